source .carry/hdr.sh
N=$B/new; O2=$O/c9; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout 200 $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch llama-3.2-3b --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  bn stage-$r $N --decode-stack
  bn item-$r $N --decode-stack --decode-stack-item-merge
  bn base-$r $B/base --decode-stack
done
bn stage-depth3 $N --decode-stack --decode-stack-ring-depth 3
bn stage-depth5 $N --decode-stack --decode-stack-ring-depth 5
bn item-depth5 $N --decode-stack --decode-stack-item-merge --decode-stack-ring-depth 5
bn layers $N
bn trace-stage $N --decode-stack --decode-stack-trace
bn trace-item $N --decode-stack --decode-stack-trace --decode-stack-item-merge
Q=mlx4 bn mlx4-stage $N --decode-stack
Q=mlx4 bn mlx4-item $N --decode-stack --decode-stack-item-merge
Q=mlx4 bn mlx4-layers $N
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk stage $N &
chk item $N --decode-stack-item-merge &
chk flags $N --decode-stack-flags &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c9.tgz c9 && rm -rf c9

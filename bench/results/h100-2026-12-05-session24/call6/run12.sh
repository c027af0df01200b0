source .carry/hdr.sh
N=$B/new; O2=$O/c12; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout 200 $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  bn default-$r $N --decode-stack
  bn base-$r $B/base --decode-stack
  Q=mlx4 bn mlx4-default-$r $N --decode-stack
done
bn layers $N
bn trace-default $N --decode-stack --decode-stack-trace
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk default $N &
chk flags $N --decode-stack-flags &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c12.tgz c12 && rm -rf c12

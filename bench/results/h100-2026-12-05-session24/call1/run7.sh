source .carry/hdr.sh
N=$B/new; O2=$O/c7; mkdir -p $O2
chk() { local name=$1; shift; local t=$(date +%s); timeout 120 $N/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch llama-3.2-3b --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  bn stack-$r $N --decode-stack
  bn merge-$r $N --decode-stack --decode-stack-stage-merge
  bn base-$r $B/base --decode-stack
done
bn trace-merge $N --decode-stack --decode-stack-trace --decode-stack-stage-merge
bn trace-stack $N --decode-stack --decode-stack-trace
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk merge --decode-stack-stage-merge
Q=mlx4 bn mlx4-merge $N --decode-stack --decode-stack-stage-merge
Q=mlx4 bn mlx4-stack $N --decode-stack
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c7.tgz c7 && rm -rf c7

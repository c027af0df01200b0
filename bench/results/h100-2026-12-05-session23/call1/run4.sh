source .carry/hdr.sh
N=$B/new; O2=$O/c4; mkdir -p $O2
chk() { local name=$1; shift; local t=$(date +%s); timeout 170 $N/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; grep -iE "whole|model" $O2/check-$name.txt | head -6 >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel' $O2/bench-$name.txt | head -2 >> $S; }
for r in 1 2; do
  bn layers-$r $N
  bn base-stack-$r $B/base --decode-stack
  bn stack-$r $N --decode-stack
  bn flags-$r $N --decode-stack --decode-stack-flags
done
bn trace $N --decode-stack --decode-stack-trace
bn trace-flags $N --decode-stack --decode-stack-trace --decode-stack-flags
bn trace-cta $N --decode-stack --decode-stack-trace --decode-stack-cta-attention
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk default
chk flags --decode-stack-flags
chk cta-attention --decode-stack-cta-attention
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c4.tgz c4 && rm -rf c4

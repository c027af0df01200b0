source .carry/hdr.sh
N=$B/new; O2=$O/c5; mkdir -p $O2
chk() { local name=$1; shift; local t=$(date +%s); timeout 170 $N/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; grep -E "^decode_stack_model" $O2/check-$name.txt | head -6 >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch llama-3.2-3b --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  bn layers-$r $N
  bn base-stack-$r $B/base --decode-stack
  bn stack-$r $N --decode-stack
  bn merge-$r $N --decode-stack --decode-stack-stage-merge
  bn waits6-$r $N --decode-stack --decode-stack-l2-prefetch 6 --decode-stack-l2-prefetch-at-waits
  bn merge-waits6-$r $N --decode-stack --decode-stack-stage-merge --decode-stack-l2-prefetch 6 --decode-stack-l2-prefetch-at-waits
done
bn merge-split16 $N --decode-stack --decode-stack-stage-merge --decode-stack-split-keys 16
bn merge-split8 $N --decode-stack --decode-stack-stage-merge --decode-stack-split-keys 8
bn split16 $N --decode-stack --decode-stack-split-keys 16
bn waits3 $N --decode-stack --decode-stack-l2-prefetch 3 --decode-stack-l2-prefetch-at-waits
bn waits10 $N --decode-stack --decode-stack-l2-prefetch 10 --decode-stack-l2-prefetch-at-waits
bn trace $N --decode-stack --decode-stack-trace
bn trace-merge $N --decode-stack --decode-stack-trace --decode-stack-stage-merge
bn trace-merge-waits6 $N --decode-stack --decode-stack-trace --decode-stack-stage-merge --decode-stack-l2-prefetch 6 --decode-stack-l2-prefetch-at-waits
bn trace-flags $N --decode-stack --decode-stack-trace --decode-stack-flags
Q=mlx4 bn mlx4-stack $N --decode-stack
Q=mlx4 bn mlx4-merge $N --decode-stack --decode-stack-stage-merge
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk merge-waits6 --decode-stack-stage-merge --decode-stack-l2-prefetch 6 --decode-stack-l2-prefetch-at-waits
chk merge-split8 --decode-stack-stage-merge --decode-stack-split-keys 8
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c5.tgz c5 && rm -rf c5

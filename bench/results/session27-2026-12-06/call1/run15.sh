source .carry/hdr.sh
N=$B/new; O2=$O/c15; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
chk default $N &
chk local $N --decode-stack-local-staging &
wait
T=100 chk bulk $N --decode-stack-bulk-copy &
T=100 chk local-bulk $N --decode-stack-local-staging --decode-stack-bulk-copy &
wait
BULK=0; grep -q "check bulk rc 0 .* 0 FAIL" $S && grep -q "check local-bulk rc 0 .* 0 FAIL" $S && BULK=1
echo "bulk ok: $BULK" >> $S
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
  bn local-$r $N --decode-stack --decode-stack-local-staging
  bn default-$r $N --decode-stack
  [ $BULK = 1 ] && bn bulk-$r $N --decode-stack --decode-stack-bulk-copy
  [ $BULK = 1 ] && bn local-bulk-$r $N --decode-stack --decode-stack-local-staging --decode-stack-bulk-copy
  Q=mlx4 bn mlx4-local-$r $N --decode-stack --decode-stack-local-staging
  Q=mlx4 bn mlx4-default-$r $N --decode-stack
  [ $BULK = 1 ] && Q=mlx4 bn mlx4-local-bulk-$r $N --decode-stack --decode-stack-local-staging --decode-stack-bulk-copy
done
bn local-depth3 $N --decode-stack --decode-stack-local-staging --decode-stack-ring-depth 3
[ $BULK = 1 ] && bn local-bulk-depth3 $N --decode-stack --decode-stack-local-staging --decode-stack-bulk-copy --decode-stack-ring-depth 3
[ $BULK = 1 ] && bn local-bulk-depth4 $N --decode-stack --decode-stack-local-staging --decode-stack-bulk-copy --decode-stack-ring-depth 4
bn local-warp-merge $N --decode-stack --decode-stack-local-staging --decode-stack-warp-merge
bn trace-local $N --decode-stack --decode-stack-trace --decode-stack-local-staging
bn trace-default $N --decode-stack --decode-stack-trace
[ $BULK = 1 ] && bn trace-local-bulk $N --decode-stack --decode-stack-trace --decode-stack-local-staging --decode-stack-bulk-copy
A=llama-3.1-8b bn 8b-awq-local $N --decode-stack --decode-stack-local-staging
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
[ $BULK = 1 ] && A=llama-3.1-8b bn 8b-awq-local-bulk $N --decode-stack --decode-stack-local-staging --decode-stack-bulk-copy
bn layers $N
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk local-flags $N --decode-stack-local-staging --decode-stack-flags &
chk local-trace $N --decode-stack-local-staging --decode-stack-trace &
wait
[ $BULK = 1 ] && chk bulk-trace $N --decode-stack-bulk-copy --decode-stack-trace --decode-stack-local-staging &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c15.tgz c15 && rm -rf c15

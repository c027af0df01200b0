source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c92; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
ops() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops "$@" > $O2/ops-$name.txt 2>&1; echo "ops $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/ops-$name.txt) ok, $(grep -c FAIL $O2/ops-$name.txt) FAIL; $(tail -1 $O2/ops-$name.txt)" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'check|decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -8 >> $S; }
# new: the overlapped decode (launch_argmax / feed_sampled_ids, two staging halves) + session 37's f16 codes.
T=120 ops feed $N --only argmax_feed
T=170 chk default $N &
T=170 chk trace $N --decode-stack-trace &
T=170 chk warp $N --decode-stack-warp-merge &
T=170 chk item $N --decode-stack-item-merge &
T=170 chk w0 $N --decode-stack-warp0-streams &
T=170 chk flags $N --decode-stack-flags &
T=170 chk cta $N --decode-stack-cta-attention &
T=170 chk rowring $N --decode-stack-row-ring &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
T=240 ops quick $N --quick
echo "quick done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn noov-$r $N --decode-stack --no-overlap
bn new-$r $N --decode-stack
done
for r in 1 2; do
Q=mlx4 bn old-mlx4-$r $OLD --decode-stack
Q=mlx4 bn noov-mlx4-$r $N --decode-stack --no-overlap
Q=mlx4 bn new-mlx4-$r $N --decode-stack
done
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn noov-8b $N --decode-stack --no-overlap
A=llama-3.1-8b bn new-8b $N --decode-stack
D=64:200:32 bn old-b64 $OLD
D=64:200:32 bn noov-b64 $N --no-overlap
D=64:200:32 bn new-b64 $N
bn old-trace $OLD --decode-stack --decode-stack-trace
bn noov-trace $N --decode-stack --decode-stack-trace --no-overlap
bn old-3 $OLD --decode-stack
bn noov-3 $N --decode-stack --no-overlap
bn new-3 $N --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c92 | xz -6 -T4 > c92.tar.xz && rm -rf c92

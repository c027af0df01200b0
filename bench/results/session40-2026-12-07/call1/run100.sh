source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c100; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL; cluster on $(grep -c "clusters of two CTAs" $O2/check-$name.txt)" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') cluster on $(grep -c 'clusters of two CTAs' $O2/bench-$name.txt)" >> $S; grep -E 'check|decode stack kernel,|warp 1 from|roofline|rror' $O2/bench-$name.txt | head -8 >> $S; }
timeout 60 $N/kr-cuda-bench --launch-bench --json $O2/launch.json > $O2/launch.txt 2>&1; echo "launch rc $?" >> $S; grep -E 'argmax tail|132 blocks' $O2/launch.txt >> $S
# Session 40 call: old = 0a5b4f3's build (HEAD's kernel), new = every global flush as 16-byte reductions.
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn new-$r $N --decode-stack
done
bn new-wm $N --decode-stack --decode-stack-warp-merge
bn new-w0 $N --decode-stack --decode-stack-warp0-streams
bn new-flags $N --decode-stack --decode-stack-flags
bn new-im $N --decode-stack --decode-stack-item-merge
bn new-rd3 $N --decode-stack --decode-stack-ring-depth 3
bn new-wm-trace $N --decode-stack --decode-stack-warp-merge --decode-stack-trace
bn new-im-trace $N --decode-stack --decode-stack-item-merge --decode-stack-trace
bn new-rd3-trace $N --decode-stack --decode-stack-ring-depth 3 --decode-stack-trace
bn new-nc $N --decode-stack --decode-stack-no-cluster-mlp
bn old-nc $OLD --decode-stack --decode-stack-no-cluster-mlp
Q=mlx4 bn old-mlx4 $OLD --decode-stack
Q=mlx4 bn new-mlx4 $N --decode-stack
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
bn new-trace $N --decode-stack --decode-stack-trace
bn old-3 $OLD --decode-stack
bn new-3 $N --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
T=150 chk new $N &
T=150 chk new-nc $N --decode-stack-no-cluster-mlp &
T=150 chk new-flags $N --decode-stack-flags &
wait
echo "all done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c100 | xz -6 -T4 > c100.tar.xz && rm -rf c100

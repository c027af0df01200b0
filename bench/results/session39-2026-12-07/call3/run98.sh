source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c98; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL; cluster on $(grep -c "clusters of two CTAs" $O2/check-$name.txt), off $(grep -c "cluster MLP form" $O2/check-$name.txt)" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') cluster on $(grep -c 'clusters of two CTAs' $O2/bench-$name.txt) off $(grep -c 'cluster MLP form' $O2/bench-$name.txt)" >> $S; grep -E 'check|decode stack kernel,|warp 1 from|rror' $O2/bench-$name.txt | head -6 >> $S; }
ops() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops "$@" > $O2/ops-$name.txt 2>&1; echo "ops $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/ops-$name.txt) ok, $(grep -c FAIL $O2/ops-$name.txt) FAIL; $(tail -1 $O2/ops-$name.txt)" >> $S; }
T=60 ops feed $N --only argmax_feed
# H200 if it comes: call 2's binaries (old = 891a032; new = the split argmax; clu = new with the cluster MLP form).
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn clu-$r $N --decode-stack --decode-stack-cluster-mlp
done
bn new-1 $N --decode-stack
Q=mlx4 bn old-mlx4 $OLD --decode-stack
Q=mlx4 bn clu-mlx4 $N --decode-stack --decode-stack-cluster-mlp
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
bn clu-trace $N --decode-stack --decode-stack-trace --decode-stack-cluster-mlp
bn old-3 $OLD --decode-stack
bn clu-3 $N --decode-stack --decode-stack-cluster-mlp
T=100 chk cluster $N --decode-stack-cluster-mlp
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c98 | xz -6 -T4 > c98.tar.xz && rm -rf c98

source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c101; mkdir -p $O2
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') cluster on $(grep -c 'clusters of two CTAs' $O2/bench-$name.txt)" >> $S; }
# old = c2dcf13 with --decode-stack-cluster-mlp (HEAD's default kernel); new = + every global flush v4
for r in 1 2 3; do
bn old-clu-$r $OLD --decode-stack --decode-stack-cluster-mlp
bn new-$r $N --decode-stack
done
bn new-rd3-1 $N --decode-stack --decode-stack-ring-depth 3
bn new-rd4 $N --decode-stack --decode-stack-ring-depth 4
bn new-rd3-2 $N --decode-stack --decode-stack-ring-depth 3
Q=mlx4 bn old-clu-mlx4 $OLD --decode-stack --decode-stack-cluster-mlp
Q=mlx4 bn new-mlx4-rd3 $N --decode-stack --decode-stack-ring-depth 3
A=llama-3.1-8b bn new-8b-rd3 $N --decode-stack --decode-stack-ring-depth 3
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c101 | xz -6 -T4 > c101.tar.xz && rm -rf c101

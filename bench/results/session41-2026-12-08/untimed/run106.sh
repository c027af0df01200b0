source .carry/hdr.sh
N=$B/new; H=$B/old; O2=$O/c106; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL; cluster on $(grep -c "clusters of two CTAs" $O2/check-$name.txt)" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} ${QF---quant awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": [0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|roofline' $O2/bench-$name.txt | head -3 >> $S; }
# old = f2e1f42's build at ring depth 4 (the tree's kernel at 332ce09); new = + o_proj's stage merge with 8 ways at S <= 8
T=150 chk new $N
for r in 1 2; do
bn head-$r $H --decode-stack --decode-stack-ring-depth 4
bn new-$r $N --decode-stack
done
A=llama-3.1-8b bn head-8b $H --decode-stack --decode-stack-ring-depth 4
A=llama-3.1-8b bn new-8b $N --decode-stack
QF="--quant mlx4" bn new-mlx4 $N --decode-stack
bn head-trace $H --decode-stack --decode-stack-ring-depth 4 --decode-stack-trace
bn new-trace $N --decode-stack --decode-stack-trace
echo "all done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c106 | xz -6 -T4 > c106.tar.xz && rm -rf c106

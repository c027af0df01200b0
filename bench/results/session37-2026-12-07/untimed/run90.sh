source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c90; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
# new: the decode stack's qkv, o_proj and gate_up units take f16 codes from f16-staged inputs (session 31's f16 codes on the 12-warp kernel).
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
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn new-$r $N --decode-stack
done
for r in 1 2; do
Q=mlx4 bn old-mlx4-$r $OLD --decode-stack
Q=mlx4 bn new-mlx4-$r $N --decode-stack
done
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
bn new-d3 $N --decode-stack --decode-stack-ring-depth 3
bn old-trace $OLD --decode-stack --decode-stack-trace
bn new-trace $N --decode-stack --decode-stack-trace
bn old-3 $OLD --decode-stack
bn new-3 $N --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c90 | xz -6 -T4 > c90.tar.xz && rm -rf c90

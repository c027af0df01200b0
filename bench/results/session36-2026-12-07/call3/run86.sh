source .carry/hdr.sh
N=$B/new; X=$B/x4; O2=$O/c86; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
# new: src as committed (8d1daaf + the row ring image check); x4: new with four mma chains a tile (one a step and chunk) in the 12-warp forms, timing only.
T=170 chk rowring $N --decode-stack-row-ring &
T=170 chk rowring-trace $N --decode-stack-row-ring --decode-stack-trace &
T=170 chk default $N &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
bn new-$r $N --decode-stack
bn x4-$r $X --decode-stack
done
A=llama-3.1-8b bn new-8b $N --decode-stack
A=llama-3.1-8b bn x4-8b $X --decode-stack
bn new-rowring $N --decode-stack --decode-stack-row-ring
Q=mlx4 bn new-mlx4 $N --decode-stack
bn new-trace $N --decode-stack --decode-stack-trace
bn x4-trace $X --decode-stack --decode-stack-trace
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c86 | xz -6 -T4 > c86.tar.xz && rm -rf c86

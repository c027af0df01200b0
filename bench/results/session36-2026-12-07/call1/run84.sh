source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c84; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
# new: warps12-split-chains.patch (session 35) on top of boundary-units.patch (session 34).
T=150 chk default $N &
T=150 chk trace $N --decode-stack-trace &
T=150 chk warp $N --decode-stack-warp-merge &
T=150 chk item $N --decode-stack-item-merge &
T=150 chk w0 $N --decode-stack-warp0-streams &
T=150 chk b0 $N --decode-stack-boundary-units 0 &
T=150 chk b1trace $N --decode-stack-boundary-units 1 --decode-stack-trace &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn new-$r $N --decode-stack
bn new-b1-$r $N --decode-stack --decode-stack-boundary-units 1
done
bn new-b0 $N --decode-stack --decode-stack-boundary-units 0
bn new-d3 $N --decode-stack --decode-stack-ring-depth 3
bn new-d4 $N --decode-stack --decode-stack-ring-depth 4
Q=mlx4 bn old-mlx4 $OLD --decode-stack
Q=mlx4 bn new-mlx4 $N --decode-stack
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
bn old-trace $OLD --decode-stack --decode-stack-trace
bn new-trace $N --decode-stack --decode-stack-trace
bn new-b1-trace $N --decode-stack --decode-stack-trace --decode-stack-boundary-units 1
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c84 | xz -6 -T4 > c84.tar.xz && rm -rf c84

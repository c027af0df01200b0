source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c82; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
T=120 chk default $N &
T=120 chk b0 $N --decode-stack-boundary-units 0 &
T=120 chk b1 $N --decode-stack-boundary-units 1 &
T=120 chk b1trace $N --decode-stack-boundary-units 1 --decode-stack-trace &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn new-$r $N --decode-stack
bn new-b1-$r $N --decode-stack --decode-stack-boundary-units 1
done
bn new-b0-1 $N --decode-stack --decode-stack-boundary-units 0
bn old-trace $OLD --decode-stack --decode-stack-trace
bn new-b1-trace $N --decode-stack --decode-stack-trace --decode-stack-boundary-units 1
Q=mlx4 bn old-mlx4 $OLD --decode-stack
Q=mlx4 bn new-mlx4 $N --decode-stack
A=llama-3.1-8b bn old-8b $OLD --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c82 | xz -6 -T4 > c82.tar.xz && rm -rf c82

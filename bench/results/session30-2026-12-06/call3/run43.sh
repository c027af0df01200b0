source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c43; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from' $O2/bench-$name.txt | head -4 >> $S; }
T=120 chk depth3 $N --decode-stack-ring-depth 3 &
T=120 chk depth5 $N --decode-stack-ring-depth 5 &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
bn old-1 $OLD --decode-stack
for r in 1 2; do
bn d2-$r $N --decode-stack --decode-stack-ring-depth 2
bn d3-$r $N --decode-stack --decode-stack-ring-depth 3
bn d4-$r $N --decode-stack --decode-stack-ring-depth 4
done
bn w0d3 $N --decode-stack --decode-stack-ring-depth 3 --decode-stack-warp0-streams
for d in 3 4 5 6; do Q=mlx4 bn mlx4-d$d $N --decode-stack --decode-stack-ring-depth $d; done
A=llama-3.1-8b bn 8b-d2 $N --decode-stack --decode-stack-ring-depth 2
A=llama-3.1-8b bn 8b-d3 $N --decode-stack --decode-stack-ring-depth 3
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c43 | xz -6 -T4 > c43.tar.xz && rm -rf c43

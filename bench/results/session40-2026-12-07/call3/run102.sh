source .carry/hdr.sh
N=$B/new; O2=$O/c102; mkdir -p $O2
bn() { local name=$1 bin=$2; shift 2; timeout 90 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at ${D:-1:400:64} --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch ' $O2/bench-$name.txt | awk '{printf "b%s ctx %s %s; ", $3, $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": [0-9]*' $O2/bench-$name.json)" >> $S; }
for d in 4 5 6 2 4; do bn rd$d $N --decode-stack --decode-stack-ring-depth $d; done
for d in 3 4 5; do A=llama-3.1-8b bn 8b-rd$d $N --decode-stack --decode-stack-ring-depth $d; done
A=llama-3.1-8b bn 8b-rd2 $N --decode-stack --decode-stack-ring-depth 2
for d in 4 5 6; do Q=mlx4 bn mlx4-rd$d $N --decode-stack --decode-stack-ring-depth $d; done
bn rd4-trace $N --decode-stack --decode-stack-ring-depth 4 --decode-stack-trace
grep "decode stack kernel,\|warp 1" $O2/bench-rd4-trace.txt >> $S
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c102 | xz -6 -T4 > c102.tar.xz && rm -rf c102

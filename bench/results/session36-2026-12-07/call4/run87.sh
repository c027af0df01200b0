source .carry/hdr.sh
N=$B/new; O2=$O/c87; mkdir -p $O2
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
# new: abeeaf4 (src as committed); on whichever card came (the H200 asked for).
for r in 1 2 3; do bn new-$r $N --decode-stack; done
Q=mlx4 bn new-mlx4 $N --decode-stack
A=llama-3.1-8b bn new-8b $N --decode-stack
bn new-trace $N --decode-stack --decode-stack-trace
grep -h "^decode batch 1 " $O2/bench-new-1.txt >> $S
echo "benches done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c87 | xz -6 -T4 > c87.tar.xz && rm -rf c87

source .carry/hdr.sh
N=$B/new; P=$B/prev; O2=$O/c14; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout 200 $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
chk default $N &
chk warp-merge $N --decode-stack-warp-merge &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
  bn default-$r $N --decode-stack
  bn prev-$r $P --decode-stack
  bn warp-merge-$r $N --decode-stack --decode-stack-warp-merge
  bn depth3-$r $N --decode-stack --decode-stack-ring-depth 3
  bn depth4-$r $N --decode-stack --decode-stack-ring-depth 4
  bn depth5-$r $N --decode-stack --decode-stack-ring-depth 5
  Q=mlx4 bn mlx4-default-$r $N --decode-stack
  Q=mlx4 bn mlx4-prev-$r $P --decode-stack
done
Q=mlx4 bn mlx4-depth2 $N --decode-stack --decode-stack-ring-depth 2
Q=mlx4 bn mlx4-depth5 $N --decode-stack --decode-stack-ring-depth 5
Q=mlx4 bn mlx4-warp-merge $N --decode-stack --decode-stack-warp-merge
bn layers $N
bn trace-default $N --decode-stack --decode-stack-trace
bn trace-warp-merge $N --decode-stack --decode-stack-trace --decode-stack-warp-merge
bn trace-prev $P --decode-stack --decode-stack-trace
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
A=llama-3.1-8b bn 8b-awq-prev $P --decode-stack
A=llama-3.1-8b bn 8b-awq-depth4 $N --decode-stack --decode-stack-ring-depth 4
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk flags $N --decode-stack-flags &
chk trace $N --decode-stack-trace &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c14.tgz c14 && rm -rf c14

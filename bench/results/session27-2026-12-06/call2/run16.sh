source .carry/hdr.sh
N=$B/new; O2=$O/c16; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
T=120 chk default $N &
T=120 chk wide $N --decode-stack-wide-merge &
wait
T=120 chk down1024 $N --decode-stack-down-block 1024 --decode-stack-wide-merge &
T=120 chk global $N --decode-stack-global-staging &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
  bn default-$r $N --decode-stack
  bn wide-$r $N --decode-stack --decode-stack-wide-merge
  bn global-$r $N --decode-stack --decode-stack-global-staging
  bn down256-$r $N --decode-stack --decode-stack-down-block 256
  bn down1024-$r $N --decode-stack --decode-stack-down-block 1024
  bn down2048-$r $N --decode-stack --decode-stack-down-block 2048
  Q=mlx4 bn mlx4-default-$r $N --decode-stack
  Q=mlx4 bn mlx4-wide-$r $N --decode-stack --decode-stack-wide-merge
  Q=mlx4 bn mlx4-down1024-$r $N --decode-stack --decode-stack-down-block 1024
done
bn trace-default $N --decode-stack --decode-stack-trace
bn trace-wide $N --decode-stack --decode-stack-trace --decode-stack-wide-merge
bn trace-down1024 $N --decode-stack --decode-stack-trace --decode-stack-down-block 1024
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
A=llama-3.1-8b bn 8b-awq-wide $N --decode-stack --decode-stack-wide-merge
A=llama-3.1-8b bn 8b-awq-down1024 $N --decode-stack --decode-stack-down-block 1024
A=llama-3.1-8b Q=mlx4 bn 8b-mlx4-default $N --decode-stack
bn layers $N
echo "benches done $(( $(date +%s)-START ))s" >> $S
T=120 chk wide-trace $N --decode-stack-wide-merge --decode-stack-trace &
T=120 chk flags $N --decode-stack-flags &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c16.tgz c16 && rm -rf c16

source .carry/hdr.sh
N=$B/new; O2=$O/c17; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
T=120 chk default $N &
T=120 chk nofence $N --decode-stack-no-barrier-fence &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
  bn default-$r $N --decode-stack
  bn nofence-$r $N --decode-stack --decode-stack-no-barrier-fence
  bn global-$r $N --decode-stack --decode-stack-global-staging
  Q=mlx4 bn mlx4-default-$r $N --decode-stack
  Q=mlx4 bn mlx4-nofence-$r $N --decode-stack --decode-stack-no-barrier-fence
done
bn trace-default $N --decode-stack --decode-stack-trace
bn trace-nofence $N --decode-stack --decode-stack-trace --decode-stack-no-barrier-fence
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
A=llama-3.1-8b bn 8b-awq-nofence $N --decode-stack --decode-stack-no-barrier-fence
A=llama-3.1-8b Q=mlx4 bn 8b-mlx4-default $N --decode-stack
bn layers $N
timeout 60 $N/kr-cuda-bench --arch llama-3.2-3b --brief --decode-only --decode-at 1:400:64 --json $O2/bench-bf16.json > $O2/bench-bf16.txt 2>&1; echo "bench bf16 rc $?: $(grep -E '^decode batch 1 ' $O2/bench-bf16.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S
echo "benches done $(( $(date +%s)-START ))s" >> $S
T=120 chk flags $N --decode-stack-flags &
T=120 chk trace $N --decode-stack-trace &
wait
T=120 chk global $N --decode-stack-global-staging &
T=120 chk item-merge $N --decode-stack-item-merge &
wait
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c17.tgz c17 && rm -rf c17

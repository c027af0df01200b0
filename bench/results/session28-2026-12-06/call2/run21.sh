source .carry/hdr.sh
N=$B/new; O2=$O/c21; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last|roofline|first unit' $O2/bench-$name.txt | head -8 >> $S; }
RR="--decode-stack --decode-stack-row-ring"
T=150 chk rr-w1 $N --decode-stack-row-ring --decode-stack-rows-in-flight 3 --decode-stack-window-rows-in-flight 1 &
T=150 chk default $N &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
bn default-1 $N --decode-stack
bn rr-p1 $N $RR --decode-stack-rows-in-flight 1
bn rr-p2w1 $N $RR --decode-stack-rows-in-flight 2 --decode-stack-window-rows-in-flight 1
bn rr-p3w1 $N $RR --decode-stack-rows-in-flight 3 --decode-stack-window-rows-in-flight 1
bn rr-p4w1 $N $RR --decode-stack-rows-in-flight 4 --decode-stack-window-rows-in-flight 1
bn rr-p5w1 $N $RR --decode-stack-rows-in-flight 5 --decode-stack-window-rows-in-flight 1
bn trace-default $N --decode-stack --decode-stack-trace
bn trace-rr-p1 $N $RR --decode-stack-trace --decode-stack-rows-in-flight 1
bn trace-rr-p3w1 $N $RR --decode-stack-trace --decode-stack-rows-in-flight 3 --decode-stack-window-rows-in-flight 1
bn trace-flags $N --decode-stack --decode-stack-trace --decode-stack-flags
bn flags $N --decode-stack --decode-stack-flags
bn default-2 $N --decode-stack
Q=mlx4 bn mlx4-default $N --decode-stack
Q=mlx4 bn mlx4-rr-p2w1 $N $RR --decode-stack-rows-in-flight 2 --decode-stack-window-rows-in-flight 1
A=llama-3.1-8b bn 8b-default $N --decode-stack
A=llama-3.1-8b bn 8b-rr-p2w1 $N $RR --decode-stack-rows-in-flight 2 --decode-stack-window-rows-in-flight 1
echo "benches done $(( $(date +%s)-START ))s" >> $S
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c21.tgz c21 && rm -rf c21

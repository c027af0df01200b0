source .carry/hdr.sh
N=$B/new; O2=$O/c20; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last|roofline' $O2/bench-$name.txt | head -6 >> $S; }
RR="--decode-stack --decode-stack-row-ring"
T=150 chk rowring $N --decode-stack-row-ring &
T=150 chk default $N &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
if grep -q "check rowring rc 0" $S; then
bn default-1 $N --decode-stack
bn rr-p2-1 $N $RR
bn rr-p1 $N $RR --decode-stack-rows-in-flight 1
bn rr-p3 $N $RR --decode-stack-rows-in-flight 3
bn rr-p4 $N $RR --decode-stack-rows-in-flight 4
bn rr-r3p2 $N $RR --decode-stack-ring-depth 3
bn trace-default $N --decode-stack --decode-stack-trace
bn trace-rr $N $RR --decode-stack-trace
Q=mlx4 bn mlx4-default $N --decode-stack
Q=mlx4 bn mlx4-rr $N $RR
Q=mlx4 bn mlx4-rr-p4 $N $RR --decode-stack-rows-in-flight 4
A=llama-3.1-8b bn 8b-default $N --decode-stack
A=llama-3.1-8b bn 8b-rr $N $RR
bn default-2 $N --decode-stack
bn rr-p2-2 $N $RR
echo "benches done $(( $(date +%s)-START ))s" >> $S
T=150 chk rowring-trace $N --decode-stack-row-ring --decode-stack-trace &
T=150 chk rowring-p1 $N --decode-stack-row-ring --decode-stack-rows-in-flight 1 &
wait
else
bn default-1 $N --decode-stack
bn trace-default $N --decode-stack --decode-stack-trace
bn d3 $N --decode-stack --decode-stack-ring-depth 3
Q=mlx4 bn mlx4-default $N --decode-stack
A=llama-3.1-8b bn 8b-default $N --decode-stack
fi
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c20.tgz c20 && rm -rf c20

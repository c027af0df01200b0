source .carry/hdr.sh
N=$B/new; O2=$O/c18; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|attention.s last|roofline' $O2/bench-$name.txt | head -6 >> $S; }
T=120 chk default $N &
T=120 chk trace $N --decode-stack-trace &
wait
echo "checks1 done $(( $(date +%s)-START ))s" >> $S
bn default-1 $N --decode-stack
Q=mlx4 bn mlx4-default-1 $N --decode-stack
bn default-2 $N --decode-stack
bn trace-default $N --decode-stack --decode-stack-trace
A=llama-3.1-8b bn 8b-awq-default $N --decode-stack
timeout 60 $N/kr-cuda-bench --arch llama-3.2-3b --brief --decode-only --decode-at 1:400:64 --json $O2/bench-bf16.json > $O2/bench-bf16.txt 2>&1; echo "bench bf16 rc $?: $(grep -E '^decode batch 1 ' $O2/bench-bf16.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S
echo "benches done $(( $(date +%s)-START ))s" >> $S
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c18.tgz c18 && rm -rf c18

source .carry/hdr.sh
N=$B/v2; O2=$O/c8; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout 200 $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch llama-3.2-3b --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  bn v2-$r $B/v2 --decode-stack
  bn v3-$r $B/v3 --decode-stack
  bn cudacore-$r $N --decode-stack --decode-stack-cuda-core-keys
  bn base-$r $B/base --decode-stack
done
bn layers $N
bn trace-cudacore $N --decode-stack --decode-stack-trace --decode-stack-cuda-core-keys
bn trace-v2 $B/v2 --decode-stack --decode-stack-trace
bn trace-v3 $B/v3 --decode-stack --decode-stack-trace
Q=mlx4 bn mlx4-cudacore $N --decode-stack --decode-stack-cuda-core-keys
Q=mlx4 bn mlx4-v2 $B/v2 --decode-stack
echo "benches done $(( $(date +%s)-START ))s" >> $S
chk v2-cudacore $B/v2 --decode-stack-cuda-core-keys &
chk v2 $B/v2 &
chk flags-v2 $B/v2 --decode-stack-flags &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
if command -v cuobjdump > /dev/null; then
  for v in v2 v3; do
    timeout 120 cuobjdump -sass $B/$v/kr-cuda-bench 2>/dev/null | awk '/Function : .*decode_stack_kernelILi2ELb0ELb0ELb0E/{p=1;print;next} /Function : /{p=0} p' > $O2/sass-$v.txt
    echo "sass $v: $(wc -l < $O2/sass-$v.txt) lines, STL $(grep -c 'STL' $O2/sass-$v.txt), LDL $(grep -c 'LDL' $O2/sass-$v.txt)" >> $S
  done
else echo "no cuobjdump: $(ls /usr/local/cuda/bin 2>/dev/null | tr '\n' ' ')" >> $S; fi
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c8.tgz c8 && rm -rf c8

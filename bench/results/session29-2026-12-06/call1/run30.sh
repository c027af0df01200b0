source .carry/hdr.sh
N=$B/new; O2=$O/c30; mkdir -p $O2
which ncu cuobjdump nvdisasm >> $S 2>&1; uname -r >> $S
# 1. the default form's bench (reference)
timeout 60 $N/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 1:400:64 --decode-stack > $O2/bench-default.txt 2>&1
echo "bench rc $?: $(grep -E '^decode batch 1 ' $O2/bench-default.txt | head -3)" >> $S
# 2. ncu: one decode stack launch, full set, source counters
t=$(date +%s)
timeout 300 ncu --clock-control none -k regex:decode_stack --launch-skip 8 --launch-count 1 --set full --import-source no -o $R/prof \
  $N/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --decode-stack > $O2/ncu-run.txt 2>&1
echo "ncu rc $? $(( $(date +%s)-t ))s" >> $S
tail -5 $O2/ncu-run.txt >> $S
ncu --import $R/prof.ncu-rep --page details --csv > $O2/details.csv 2>&1; echo "details rc $?" >> $S
ncu --import $R/prof.ncu-rep --page raw --csv > $O2/raw.csv 2>&1; echo "raw rc $?" >> $S
ncu --import $R/prof.ncu-rep --page source --csv --print-source sass > $O2/source-sass.csv 2>&1; echo "source rc $?" >> $S
cp $R/prof.ncu-rep $O2/ 2>/dev/null
# 3. SASS of the decode stack forms (backup)
cuobjdump -sass $N/kr-cuda-bench 2>/dev/null | awk '/Function : .*decode_stack_kernel/{p=1} /Function : /&&!/decode_stack_kernel/{p=0} p' > $O2/stack.sass; echo "sass lines $(wc -l < $O2/stack.sass)" >> $S
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c30.tgz c30 && rm -rf c30

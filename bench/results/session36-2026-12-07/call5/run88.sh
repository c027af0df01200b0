source .carry/hdr.sh
N=$B/new; O2=$O/c88; mkdir -p $O2
# new: abeeaf4 (12 warps a CTA for 128-column groups). 1. the bench (reference)
timeout 60 $N/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --decode-at 1:400:64 --decode-stack > $O2/bench-default.txt 2>&1
echo "bench rc $?: $(grep -E '^decode batch 1 ' $O2/bench-default.txt | head -3)" >> $S
# 2. ncu: one decode stack launch, full set, source counters (as session 29's run30.sh)
t=$(date +%s)
timeout 300 ncu --clock-control none -k regex:decode_stack --launch-skip 8 --launch-count 1 --set full --import-source no -o $R/prof \
  $N/kr-cuda-bench --arch llama-3.2-3b --quant awq --brief --decode-only --decode-stack > $O2/ncu-run.txt 2>&1
echo "ncu rc $? $(( $(date +%s)-t ))s" >> $S
tail -5 $O2/ncu-run.txt >> $S
ncu --import $R/prof.ncu-rep --page details --csv > $O2/details.csv 2>&1; echo "details rc $?" >> $S
ncu --import $R/prof.ncu-rep --page source --csv --print-source sass > $O2/source-sass.csv 2>&1; echo "source rc $?" >> $S
python3 scripts/ncu_stack_regions.py $O2/source-sass.csv --units 3840,2304,12288,6144 --layers 28 --json $O/regions.json > $O/regions.txt 2>&1; echo "regions rc $?" >> $S
cat $O/regions.txt >> $S
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c88 | xz -6 -T8 > c88.tar.xz && rm -rf c88

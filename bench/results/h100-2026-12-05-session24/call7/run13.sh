source .carry/hdr.sh
t=$(date +%s); timeout 200 $B/plant/kr-backend-ops --only decode_stack > $O/check-plant-mask.txt 2>&1; echo "check plant-mask rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O/check-plant-mask.txt) ok, $(grep -c FAIL $O/check-plant-mask.txt) FAIL" >> $S
grep FAIL $O/check-plant-mask.txt | head -5 >> $S
cd $O && gzip check-plant-mask.txt

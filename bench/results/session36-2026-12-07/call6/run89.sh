source .carry/hdr.sh
N=$B/new; O2=$O/c89; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
# new: a2f797a's kr-backend-ops (the review's helper for the CTA attention's expectations).
T=170 chk default $N &
T=170 chk cta $N --decode-stack-cta-attention &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c89 | xz -6 -T4 > c89.tar.xz && rm -rf c89

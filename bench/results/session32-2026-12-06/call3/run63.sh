source .carry/hdr.sh
N=$B/new; OLD=$B/old; O2=$O/c63; mkdir -p $O2
chk() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops --only decode_stack "$@" > $O2/check-$name.txt 2>&1; echo "check $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/check-$name.txt) ok, $(grep -c FAIL $O2/check-$name.txt) FAIL" >> $S; }
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}') depth $(grep -o '"decode_stack_ring_depth_used": *[0-9]*' $O2/bench-$name.json | grep -o '[0-9]*$')" >> $S; grep -E 'decode stack kernel,|warp 1 from|attention.s last' $O2/bench-$name.txt | head -6 >> $S; }
T=150 chk default $N &
T=150 chk trace $N --decode-stack-trace &
F='decode_stack_kernelILi2ELb0ELb0ELb0ELb0E'
( for v in old new; do cuobjdump -sass $B/$v/kr-cuda-bench 2>/dev/null | awk -v f="$F" '/Function :/{p=index($0,f)>0} p' > /tmp/sass-$v.txt; done; python3 scripts/sass_unit_loops.py /tmp/sass-old.txt /tmp/sass-new.txt > $O2/sass-loops.txt 2>&1 ) &
wait
echo "checks done $(( $(date +%s)-START ))s" >> $S
for r in 1 2; do
bn old-$r $OLD --decode-stack
bn new-$r $N --decode-stack
done
bn old-trace $OLD --decode-stack --decode-stack-trace
bn new-trace $N --decode-stack --decode-stack-trace
echo "benches done $(( $(date +%s)-START ))s" >> $S
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c63 | xz -6 -T4 > c63.tar.xz && rm -rf c63

source .carry/hdr.sh
N=$B/new; O2=$O/c94; mkdir -p $O2
ops() { local name=$1 bin=$2; shift 2; local t=$(date +%s); timeout ${T:-200} $bin/kr-backend-ops "$@" > $O2/ops-$name.txt 2>&1; echo "ops $name rc $? $(( $(date +%s)-t ))s: $(grep -c ' ok' $O2/ops-$name.txt) ok, $(grep -c FAIL $O2/ops-$name.txt) FAIL; $(tail -1 $O2/ops-$name.txt)" >> $S; }
gen() { local name=$1; shift; timeout 120 $N/kr-serve generate --device cuda --arch ${A:-llama-3.2-3b} --dummy-weights --ids 128000,791,6864,315,9822,374 --max-tokens ${M:-256} --ignore-eos --json "$@" > $O2/gen-$name.json 2> $O2/gen-$name.err; echo "gen $name rc $?: $(tail -1 $O2/gen-$name.err) ids-md5 $(python3 -c "import json,sys; d=json.load(open('$O2/gen-$name.json')); print(len(d['ids']), __import__('hashlib').md5(str(d['ids']).encode()).hexdigest()[:12])" 2>&1)" >> $S; }
# new: the overlapped decode through the engine (kr-serve generate), on and off; then the ops check again.
T=120 ops feed $N --only argmax_feed
gen on-1 --temperature 0
gen off-1 --temperature 0 --no-overlap-decode
gen sampled-on --temperature 0.7 --seed 5
gen sampled-off --temperature 0.7 --seed 5 --no-overlap-decode
bn() { local name=$1; shift; timeout 90 $N/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch |check' $O2/bench-$name.txt | awk '{printf "%s; ", $0}')" >> $S; }
bn new-1 --decode-stack
bn noov-1 --decode-stack --no-overlap
Q=mlx4 bn new-mlx4 --decode-stack
A=llama-3.1-8b bn new-8b --decode-stack
echo "done $(( $(date +%s)-START ))s" >> $S
cd $O && tar cf - c94 | xz -6 -T4 > c94.tar.xz && rm -rf c94

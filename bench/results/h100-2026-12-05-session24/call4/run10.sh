source .carry/hdr.sh
N=$B/new; O2=$O/c10; mkdir -p $O2
bn() { local name=$1 bin=$2; shift 2; timeout 60 $bin/kr-cuda-bench --arch ${A:-llama-3.2-3b} --quant ${Q:-awq} --brief --decode-only --decode-at 1:400:64 --json $O2/bench-$name.json "$@" > $O2/bench-$name.txt 2>&1; echo "bench $name rc $?: $(grep -E '^decode batch 1 ' $O2/bench-$name.txt | awk '{printf "ctx %s %s; ", $5, $6}')" >> $S; grep -E 'decode stack kernel,|attention.s last' $O2/bench-$name.txt | head -4 >> $S; }
for r in 1 2; do
  for d in 2 3 4; do bn depth$d-$r $N --decode-stack --decode-stack-ring-depth $d; done
done
bn trace-depth3 $N --decode-stack --decode-stack-trace --decode-stack-ring-depth 3
Q=mlx4 bn mlx4-depth3 $N --decode-stack --decode-stack-ring-depth 3
Q=mlx4 bn mlx4-depth4 $N --decode-stack
A=llama-3.1-8b bn 8b-awq-depth3 $N --decode-stack --decode-stack-ring-depth 3
A=llama-3.1-8b bn 8b-awq-depth4 $N --decode-stack
A=llama-3.1-8b bn 8b-awq-layers $N
echo "elapsed $(( $(date +%s)-START ))s" >> $S
cd $O && tar czf c10.tgz c10 && rm -rf c10

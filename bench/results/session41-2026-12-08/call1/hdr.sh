set -u; START=$(date +%s)
rm -rf /tmp/kb; mkdir -p /tmp/kb && tar xJf .carry/bins.tar.xz -C /tmp/kb; B=/tmp/kb/sb1
O=$OUT; S=$O/summary.txt; R=/tmp/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >> $S; date -u >> $S
run() { local name=$1 lim=$2; shift 2; local t=$(date +%s); timeout $lim "$@" > $R/$name.txt 2>&1; echo "$name rc $? $(( $(date +%s)-t ))s" >> $S; }

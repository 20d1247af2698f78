#!/usr/bin/env python3
# Rough pass-through overhead: sequential keep-alive requests, direct to the simulator vs through the gateway.
# Bounded (3,300 requests per target per round, loopback only). See docs/performance.md for how to start both servers.
import http.client, json, time, statistics
import sys
GW=int(sys.argv[1]) if len(sys.argv)>1 else 9200
SIM=int(sys.argv[2]) if len(sys.argv)>2 else 9100
admin={"Authorization":"Bearer tga-bench-admin-0000000000","content-type":"application/json"}
c=http.client.HTTPConnection("127.0.0.1",GW)
c.request("POST","/admin/teams",json.dumps({"name":"bench"}),admin); team=json.loads(c.getresponse().read())["id"]
c.request("POST",f"/admin/teams/{team}/keys",json.dumps({"name":"k"}),admin); key=json.loads(c.getresponse().read())["key"]
body=json.dumps({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Give me a one line summary of "+("the quarterly report "*40)}]})
def run(port, headers, n=3000):
    conn=http.client.HTTPConnection("127.0.0.1",port); lat=[]
    for i in range(n+300):
        t=time.perf_counter(); conn.request("POST","/v1/chat/completions",body,headers); r=conn.getresponse(); r.read(); d=time.perf_counter()-t
        assert r.status==200, r.status
        if i>=300: lat.append(d*1e6)
    lat.sort(); return lat[len(lat)//2], lat[int(len(lat)*0.99)]
for rnd in range(2):
    d=run(SIM,{"Authorization":"Bearer sk-bench","content-type":"application/json"})
    g=run(GW,{"Authorization":"Bearer "+key,"content-type":"application/json","x-tokengateway-optimize":"off"})
    f=run(GW,{"Authorization":"Bearer "+key,"content-type":"application/json"})
    print(f"round {rnd}: direct p50 {d[0]:.0f}us p99 {d[1]:.0f}us | gateway(optimize off) p50 {g[0]:.0f}us p99 {g[1]:.0f}us (+{g[0]-d[0]:.0f}us p50) | gateway(full) p50 {f[0]:.0f}us p99 {f[1]:.0f}us (+{f[0]-d[0]:.0f}us p50)")

Console.Error.WriteLine("usage: tokengateway savings --input requests.jsonl --report report.json [--emit rewritten.jsonl] [--policy policy.json]");
return 2;

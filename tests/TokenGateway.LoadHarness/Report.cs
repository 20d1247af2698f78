using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace TokenGateway.LoadHarness;

/// <summary>Results of one payload against one target, with the comparisons taken in the same run.</summary>
internal sealed record PayloadReport(string Payload, int BodyBytes, OpenLoopResult? OpenLoop, ThroughputResult? Throughput)
{
    public long? AddedP50Us { get; init; }

    public long? AddedP99Us { get; init; }

    public long? AddedP999Us { get; init; }

    public long? TtftOverheadP50Us { get; init; }

    public long? TtftOverheadP99Us { get; init; }

    public double? ThroughputVsYarp { get; init; }

    public double? ThroughputVsPeer { get; init; }

    public double? CpuVsYarp { get; init; }

    public double? CpuVsPeer { get; init; }

    /// <summary>This target's allocated bytes per request minus YARP's on the same payload.</summary>
    public double? AllocOverYarpBytes { get; init; }
}

/// <summary>One target: what it is, whether it ran, its peak RSS and its per-payload results.</summary>
internal sealed record TargetReport(string Name, string Description, string Status, string? Note, long? PeakRssBytes,
    IReadOnlyList<PayloadReport> Payloads)
{
    /// <summary>Memory per open stream, short vs long streams (.NET proxies only).</summary>
    public StreamMemoryResult? StreamMemory { get; init; }
}

/// <summary>One of issue #8's targets, evaluated on this run (Met is null when it could not be evaluated).</summary>
internal sealed record TargetCheck(string Goal, bool? Met, string Measured);

/// <summary>The whole run: machine, settings, targets and the goal checks; written as JSON and printed as a table.</summary>
internal sealed record HarnessReport(
    DateTimeOffset StartedAt, string Mode, IReadOnlyDictionary<string, string> Machine, IReadOnlyDictionary<string, string> Settings,
    IReadOnlyList<TargetReport> Targets, IReadOnlyList<TargetCheck> Checks)
{
    public const string Direct = "direct";
    public const string Yarp = "yarp";
    public const string Passthrough = "tokengateway-passthrough";
    public const string Full = "tokengateway-full";
    /// <summary>The pass-through gateway with <c>Resilience:Enabled=false</c> (opt-in target: the resilience pipeline's cost).</summary>
    public const string NoResilience = "tokengateway-no-resilience";
    public const string Peer = "portkey";

    private static readonly JsonSerializerOptions _json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Adds the comparisons (over direct, against YARP and the peer) and evaluates the goals.</summary>
    public static HarnessReport Compare(DateTimeOffset startedAt, string mode, IReadOnlyDictionary<string, string> machine,
        IReadOnlyDictionary<string, string> settings, IReadOnlyList<TargetReport> targets)
    {
        PayloadReport? Find(string target, string payload) =>
            targets.FirstOrDefault(t => t.Name == target)?.Payloads.FirstOrDefault(p => p.Payload == payload);

        var compared = targets.Select(target => target with
        {
            Payloads = target.Payloads.Select(p =>
            {
                var direct = Find(Direct, p.Payload);
                var yarp = Find(Yarp, p.Payload);
                var peer = Find(Peer, p.Payload);
                return p with
                {
                    AddedP50Us = Diff(p.OpenLoop?.P50Us, direct?.OpenLoop?.P50Us),
                    AddedP99Us = Diff(p.OpenLoop?.P99Us, direct?.OpenLoop?.P99Us),
                    AddedP999Us = Diff(p.OpenLoop?.P999Us, direct?.OpenLoop?.P999Us),
                    TtftOverheadP50Us = Diff(p.OpenLoop?.TtftP50Us, direct?.OpenLoop?.TtftP50Us),
                    TtftOverheadP99Us = Diff(p.OpenLoop?.TtftP99Us, direct?.OpenLoop?.TtftP99Us),
                    ThroughputVsYarp = Ratio(Rps(p.Throughput), Rps(yarp?.Throughput)),
                    ThroughputVsPeer = Ratio(Rps(p.Throughput), Rps(peer?.Throughput)),
                    CpuVsYarp = Ratio(p.Throughput?.CpuUsPerRequest, yarp?.Throughput?.CpuUsPerRequest),
                    CpuVsPeer = Ratio(p.Throughput?.CpuUsPerRequest, peer?.Throughput?.CpuUsPerRequest),
                    AllocOverYarpBytes = p.Throughput?.AllocBytesPerRequest - yarp?.Throughput?.AllocBytesPerRequest,
                };
            }).ToList(),
        }).ToList();

        return new HarnessReport(startedAt, mode, machine, settings, compared, Evaluate(compared));
    }

    public string ToJson() => JsonSerializer.Serialize(this, _json);

    public string ToTable()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{"target",-26}{"payload",-11}{"p50",9}{"p99",10}{"p99.9",10}{"+p50",9}{"+p99",10}{"+p99.9",10}{"ttft+99",9}{"rps@32",9}{"xYARP",7}{"xPeer",7}{"cpu/req",9}{"alloc/req",11}{"err",6}");
        text.AppendLine(CultureInfo.InvariantCulture, $"{"",-37}{"(latency µs, open loop at a fixed rate; cpu µs and allocated bytes of the target process)",0}");
        foreach (var target in Targets)
        {
            if (target.Status != "ok")
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{target.Name,-26}{target.Status}: {target.Note}");
                continue;
            }

            foreach (var p in target.Payloads)
            {
                var o = p.OpenLoop;
                var t = p.Throughput;
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"{target.Name,-26}{p.Payload,-11}{F(o?.P50Us),9}{F(o?.P99Us),10}{F(o?.P999Us),10}{F(p.AddedP50Us),9}{F(p.AddedP99Us),10}{F(p.AddedP999Us),10}{F(p.TtftOverheadP99Us),9}{F(t is { Requests: > 0 } ? t.Rps : null),9}{R(p.ThroughputVsYarp),7}{R(p.ThroughputVsPeer),7}{F(t?.CpuUsPerRequest),9}{(t?.AllocBytesPerRequest is { } a ? F(a) : "n/a"),11}{(o?.Errors ?? 0) + (t?.Errors ?? 0),6}");
            }

            text.AppendLine(CultureInfo.InvariantCulture, $"{"",-26}peak RSS {F(target.PeakRssBytes / 1048576.0)} MiB{(target.Note is null ? "" : "; " + target.Note)}");
            if (target.StreamMemory is { } memory)
            {
                text.AppendLine(StreamMemoryLine("", memory));
            }
        }

        text.AppendLine();
        foreach (var check in Checks)
        {
            var verdict = check.Met switch { true => "MET   ", false => "MISSED", null => "n/a   " };
            text.AppendLine(CultureInfo.InvariantCulture, $"{verdict} {check.Goal}: {check.Measured}");
        }

        return text.ToString();
    }

    private static List<TargetCheck> Evaluate(IReadOnlyList<TargetReport> targets)
    {
        PayloadReport? Find(string target, string payload) =>
            targets.FirstOrDefault(t => t.Name == target && t.Status == "ok")?.Payloads.FirstOrDefault(p => p.Payload == payload);

        var checks = new List<TargetCheck>();
        foreach (var payload in new[] { "chat-1k", "rag-20k", "conv-100k" })
        {
            var pass = Find(Passthrough, payload);
            checks.Add(new($"pass-through adds ≤ 150 µs at p50 ({payload})", AtMost(pass?.AddedP50Us, 150), Added(pass?.AddedP50Us)));
            checks.Add(new($"pass-through adds ≤ 1 ms at p99 ({payload})", AtMost(pass?.AddedP99Us, 1000), Added(pass?.AddedP99Us)));
            checks.Add(new($"pass-through ≥ 80% of YARP throughput ({payload})", pass?.ThroughputVsYarp is { } r ? r >= 0.8 : null,
                $"{P(pass?.ThroughputVsYarp)} ({F(pass?.Throughput?.Rps)} vs {F(Find(Yarp, payload)?.Throughput?.Rps)} req/s)"));
        }

        var pass1k = Find(Passthrough, "chat-1k");
        checks.Add(new("pass-through allocates ≤ 4 KB per request beyond YARP's own (chat-1k)",
            pass1k?.AllocOverYarpBytes is { } extra ? extra <= 4096 : null,
            $"{(pass1k?.AllocOverYarpBytes is { } e ? (e >= 0 ? "+" : "") + F(e) : "-")} B/request ({F(pass1k?.Throughput?.AllocBytesPerRequest)} vs YARP {F(Find(Yarp, "chat-1k")?.Throughput?.AllocBytesPerRequest)} B)"));

        var full1k = Find(Full, "chat-1k");
        checks.Add(new("full pipeline ≥ 10× the peer's throughput (chat-1k)", full1k?.ThroughputVsPeer is { } x ? x >= 10 : null,
            $"{R(full1k?.ThroughputVsPeer)}× ({F(full1k?.Throughput?.Rps)} vs {F(Find(Peer, "chat-1k")?.Throughput?.Rps)} req/s)"));

        // Translation cost (issue #16): the same 1 KB chat for a Claude model on the same target, minus the native one.
        foreach (var name in new[] { Passthrough, Full })
        {
            var native = Find(name, "chat-1k")?.Throughput?.CpuUsPerRequest;
            var translated = Find(name, "chat-1k-xlat")?.Throughput?.CpuUsPerRequest;
            double? added = native is { } n && translated is { } t ? t - n : null;
            checks.Add(new($"translation adds ≤ 100 µs CPU per request ({name}, chat-1k-xlat vs chat-1k)", added is { } a ? a <= 100 : null,
                $"{(added is { } d ? (d >= 0 ? "+" : "") + F(d) : "-")} µs/request ({F(native)} → {F(translated)} µs/request)"));
        }

        // Resilience pipeline on the happy path (issue #13): the pass-through gateway minus the same with Resilience:Enabled=false.
        if (targets.Any(t => t.Name == NoResilience && t.Status == "ok"))
        {
            foreach (var payload in new[] { "chat-1k", "stream-500" })
            {
                var with = Find(Passthrough, payload)?.Throughput?.CpuUsPerRequest;
                var without = Find(NoResilience, payload)?.Throughput?.CpuUsPerRequest;
                double? added = with is { } w && without is { } wo ? w - wo : null;
                checks.Add(new($"resilience pipeline adds ≤ 10 µs CPU per request ({payload}, {Passthrough} vs {NoResilience})", added is { } a ? a <= 10 : null,
                    $"{(added is { } d ? (d >= 0 ? "+" : "") + F(d) : "-")} µs/request ({F(without)} → {F(with)} µs/request)"));
            }
        }

        var full20k = Find(Full, "rag-20k");
        double? perKb = full1k?.Throughput is { } small && full20k?.Throughput is { } large && full20k.BodyBytes > full1k.BodyBytes
            && large.CpuUsPerRequest is { } largeCpu && small.CpuUsPerRequest is { } smallCpu
            ? (largeCpu - smallCpu) / ((full20k.BodyBytes - full1k.BodyBytes) / 1024.0)
            : null;
        checks.Add(new("full pipeline CPU ≤ 30 µs per KB (rag-20k vs chat-1k)", perKb is { } k ? k <= 30 : null,
            $"{F(perKb)} µs/KB ({F(full1k?.Throughput?.CpuUsPerRequest)} → {F(full20k?.Throughput?.CpuUsPerRequest)} µs/request)"));

        foreach (var name in new[] { Passthrough, Full })
        {
            var memory = targets.FirstOrDefault(t => t.Name == name && t.Status == "ok")?.StreamMemory;
            checks.Add(new($"{name}: memory per stream does not grow with stream length", memory?.Met,
                memory is null ? "-" : $"live heap {Kb(memory.Short.LiveHeapPerStreamBytes)} → {Kb(memory.Long.LiveHeapPerStreamBytes)} KB/stream " +
                    $"(×{R(memory.GrowthRatio)}; growth {Kb(memory.GrowthPerStreamBytes)} KB vs {Kb(memory.ExtraBytesStreamed)} KB more streamed, limit {Kb(memory.GrowthLimitBytes)} KB)"));
        }

        foreach (var name in new[] { Passthrough, Full })
        {
            var stream = Find(name, "stream-500");
            checks.Add(new($"{name}: time-to-first-token overhead ≤ 1 ms at p99", AtMost(stream?.TtftOverheadP99Us, 1000),
                $"{Added(stream?.TtftOverheadP99Us)} (p50 {Added(stream?.TtftOverheadP50Us)})"));
        }

        return checks;
    }

    /// <summary>One printed line: per-stream live heap and RSS for short and long streams, and the growth.</summary>
    public static string StreamMemoryLine(string name, StreamMemoryResult memory)
    {
        string Side(StreamMemorySample s) => string.Create(CultureInfo.InvariantCulture,
            $"{s.OutputTokens} tok ({s.OpenAtSample} open, {s.EventsPerStreamAtSample:0} events, {s.BytesPerStreamAtSample / 1024:0} KB each) heap {Kb(s.LiveHeapPerStreamBytes)} KB, RSS {Kb(s.RssPerStreamBytes)} KB/stream");
        var notes = string.Join("; ", new[] { memory.Short.Note, memory.Long.Note }.Where(n => n is not null));
        return string.Create(CultureInfo.InvariantCulture,
            $"{name,-26}streams: short {Side(memory.Short)} | long {Side(memory.Long)} | growth ×{R(memory.GrowthRatio)} ({memory.PhaseSeconds:0.0} s){(notes.Length > 0 ? " — " + notes : "")}");
    }

    private static string Kb(double? bytes) => bytes is { } b ? (b / 1024).ToString("0.0", CultureInfo.InvariantCulture) : "-";

    /// <summary>A negative overhead means the direct run was disturbed (the machine, not the proxy): inconclusive, not met.</summary>
    private static bool? AtMost(long? added, long limit) => added is { } a && a >= 0 ? a <= limit : null;

    private static string Added(long? added) => added switch
    {
        null => "-",
        < 0 => $"{F(added)} µs (negative: the direct run was slower, inconclusive)",
        _ => $"+{F(added)} µs",
    };

    private static long? Diff(long? value, long? baseline) => value is { } v && baseline is { } b ? v - b : null;

    private static double? Rps(ThroughputResult? result) => result is { Requests: > 0 } ? result.Rps : null;

    private static double? Ratio(double? value, double? baseline) => value is { } v && baseline is { } b && b > 0 ? v / b : null;

    private static string F(double? value) => value is { } v ? v.ToString("N0", CultureInfo.InvariantCulture) : "-";

    private static string F(long? value) => value is { } v ? v.ToString("N0", CultureInfo.InvariantCulture) : "-";

    private static string R(double? value) => value is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) : "-";

    private static string P(double? value) => value is { } v ? v.ToString("P0", CultureInfo.InvariantCulture) : "-";
}

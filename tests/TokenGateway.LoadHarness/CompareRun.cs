using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.LoadHarness;

/// <summary>
/// Issue #17's side-by-side table (<c>--compare</c>): plain YARP, the gateway as <c>dotnet run</c> ships it (default
/// logging, a team without policy, optimization on by the default policy) and the same gateway with
/// <c>x-tokengateway-optimize: off</c>, each measured <see cref="HarnessOptions.Repeat"/> times in alternating order,
/// with the simulator called directly as the floor. Per repetition and target: throughput and CPU/allocations per
/// request at 32 connections (chat-1k), latency at one connection (chat-1k, back to back) and time to the first
/// streamed byte (stream-500, open loop). Ratios are taken within one repetition; the table gives median, min and max.
/// </summary>
internal static class CompareRun
{
    public const string Defaults = "tokengateway-defaults";
    public const string OptimizeOff = "tokengateway-optimize-off";

    /// <summary>The targets in their forward order; even repetitions run them backwards.</summary>
    private static readonly string[] _order = [HarnessReport.Direct, HarnessReport.Yarp, Defaults, OptimizeOff];

    public static async Task<JsonObject> RunAsync(
        HarnessOptions options, IReadOnlyDictionary<string, Target> targets, LoadGenerator generator, Stopwatch clock)
    {
        var chat = Payloads.All().Single(p => p.Name == "chat-1k");
        var stream = Payloads.All().Single(p => p.Name == "stream-500") with { BaseRate = options.CompareStreamRate };

        // One untimed pass per target and payload first: JIT, pools and caches, so the first repetition is not a warm-up.
        foreach (var name in _order)
        {
            await generator.WarmAsync(targets[name], chat);
            await generator.WarmAsync(targets[name], stream);
        }

        var reps = new List<Dictionary<string, Sample>>();
        for (var rep = 0; rep < options.Repeat; rep++)
        {
            if (clock.Elapsed > options.Deadline)
            {
                Console.WriteLine($"deadline reached after {rep} repetitions");
                break;
            }

            var order = rep % 2 == 0 ? _order : _order.Reverse().ToArray();
            var samples = new Dictionary<string, Sample>(StringComparer.Ordinal);
            foreach (var name in order)
            {
                var target = targets[name];
                var throughput = await generator.ClosedLoopAsync(target, chat);
                var single = await generator.SequentialAsync(target, chat, options.ThroughputWarmup, options.SequentialMeasure);
                var ttfb = await generator.OpenLoopAsync(target, stream);
                var sample = new Sample(throughput.Rps, throughput.CpuUsPerRequest, throughput.AllocBytesPerRequest, single.P50Us, single.P99Us,
                    ttfb.TtftP50Us, ttfb.TtftP99Us, throughput.Errors + single.Errors + ttfb.Errors, throughput.FirstError ?? single.FirstError ?? ttfb.FirstError);
                samples[name] = sample;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"rep {rep + 1} {name,-26} {sample.Rps,7:0} req/s  cpu {sample.CpuUs,6:0} µs/req  alloc {sample.AllocBytes,7:0} B/req  1-conn p50 {sample.P50Us,6} µs  stream TTFB p99 {sample.TtfbP99Us,7} µs  errors {sample.Errors}{(sample.FirstError is { } e ? " (" + e + ")" : "")}"));
            }

            reps.Add(samples);
        }

        var table = Table(reps);
        Console.WriteLine();
        Console.WriteLine(table);
        return ToJson(reps, table);
    }

    private sealed record Sample(double Rps, double? CpuUs, double? AllocBytes, long? P50Us, long? P99Us, long? TtfbP50Us, long? TtfbP99Us, long Errors, string? FirstError);

    private static string Table(List<Dictionary<string, Sample>> reps)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Issue #17 comparison: {reps.Count} repetitions, median [min – max]; ratios and differences within each repetition");
        sb.AppendLine();
        sb.AppendLine("| target | req/s @32 | × YARP | CPU µs/req | alloc B/req | p50 1 conn µs | p50 − YARP µs | stream TTFB p99 µs | TTFB p99 − YARP µs |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var name in _order)
        {
            var rows = reps.Where(r => r.ContainsKey(name)).ToList();
            string Col(Func<Dictionary<string, Sample>, double?> f, string format) => Dist(rows.Select(f), format);
            sb.AppendLine(string.Join(" | ",
                "| " + name,
                Col(r => r[name].Rps, "N0"),
                Col(r => r[name].Rps / r[HarnessReport.Yarp].Rps, "0.00"),
                Col(r => r[name].CpuUs, "N0"),
                Col(r => r[name].AllocBytes, "N0"),
                Col(r => r[name].P50Us, "N0"),
                Col(r => r[name].P50Us - r[HarnessReport.Yarp].P50Us, "N0"),
                Col(r => r[name].TtfbP99Us, "N0"),
                Col(r => r[name].TtfbP99Us - r[HarnessReport.Yarp].TtfbP99Us, "N0")) + " |");
        }

        sb.AppendLine();
        sb.AppendLine("Goals (issue #17): defaults ≥ 0.60 × YARP; optimize-off ≥ 0.80 × YARP; p50 − YARP ≤ 60 µs; TTFB p99 − YARP ≤ 500 µs.");
        return sb.ToString();
    }

    private static string Dist(IEnumerable<double?> values, string format)
    {
        var list = values.Where(v => v is not null).Select(v => v!.Value).Order().ToList();
        if (list.Count == 0)
        {
            return "–";
        }

        var median = list.Count % 2 == 1 ? list[list.Count / 2] : (list[list.Count / 2 - 1] + list[list.Count / 2]) / 2;
        string F(double v) => v.ToString(format, CultureInfo.InvariantCulture);
        return list.Count == 1 ? F(median) : $"{F(median)} [{F(list[0])} – {F(list[^1])}]";
    }

    private static JsonObject ToJson(List<Dictionary<string, Sample>> reps, string table)
    {
        var array = new JsonArray();
        foreach (var rep in reps)
        {
            var o = new JsonObject();
            foreach (var (name, s) in rep)
            {
                o[name] = JsonSerializer.SerializeToNode(s);
            }

            array.Add(o);
        }

        return new JsonObject { ["repetitions"] = array, ["table"] = table };
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace TokenGateway.LoadHarness;

/// <summary>
/// Issue #8's performance harness. <c>dotnet run -c Release --project tests/TokenGateway.LoadHarness [-- --smoke]</c>
/// starts the simulator, a plain YARP proxy, TokenGateway (pass-through and full pipeline) and the Portkey gateway as
/// loopback child processes, measures each with the same client and payloads, prints a table and writes JSON.
/// </summary>
internal static class HarnessProgram
{
    private const string ProviderKey = "sk-bench";
    private static readonly List<ChildProcess> _children = [];

    public static async Task<int> Main(string[] args)
    {
        HarnessOptions options;
        try
        {
            options = HarnessOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillChildren();
        Console.CancelKeyPress += (_, _) => KillChildren();
        try
        {
            return await RunAsync(options);
        }
        finally
        {
            KillChildren();
        }
    }

    private static async Task<int> RunAsync(HarnessOptions options)
    {
        var clock = Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        var root = FindRepoRoot();
        var configuration = typeof(HarnessProgram).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        if (configuration != "Release")
        {
            Console.Error.WriteLine($"warning: running the {configuration} build; measure with `dotnet run -c Release`.");
        }

        string Dll(string folder, string project) => Path.Combine(root, folder, project, "bin", configuration, "net10.0", project + ".dll");
        var simulatorDll = Dll("src", "TokenGateway.Simulator");
        var gatewayDll = Dll("src", "TokenGateway");
        var yarpDll = Dll("tests", "TokenGateway.YarpBaseline");
        var work = Directory.CreateTempSubdirectory("tokengateway-perf-").FullName;
        var machine = await MachineAsync();
        Console.WriteLine($"TokenGateway load harness ({(options.Smoke ? "smoke" : "full")}) — {machine["cpus"]} CPUs, load {machine["loadAtStart"]}");

        var all = Payloads.All(options.UniqueBodies);
        var payloads = options.Payloads is { } names
            ? names.Select(n => all.FirstOrDefault(p => p.Name == n) ?? throw new ArgumentException($"Unknown payload '{n}'. Payloads: {string.Join(", ", all.Select(p => p.Name))}")).ToList()
            : all;
        var generator = new LoadGenerator(options);
        var reports = new List<TargetReport>();
        try
        {
            // The simulator announces a provider tier large enough for the load (its default, 10,000 requests and 30 M
            // tokens a minute, runs out within seconds at these rates, after which the gateway cools its only key and
            // every request takes the all-keys-cooling branch instead of the happy path; issue #17).
            var simulator = Track(ChildProcess.Start("simulator", "dotnet",
                [simulatorDll, "--urls", Url(out var simPort), "--Simulator:RateLimitRequestsPerMinute=1000000000",
                    "--Simulator:RateLimitTokensPerMinute=1000000000000"], simPort,
                environment: new Dictionary<string, string> { ["SIMULATOR_API_KEY"] = ProviderKey }));
            await simulator.WaitHealthyAsync("healthz", TimeSpan.FromSeconds(60));
            var upstream = $"http://127.0.0.1:{simPort}/";

            var bearer = new Dictionary<string, string> { ["Authorization"] = "Bearer " + ProviderKey };
            if (options.Compare)
            {
                return await CompareAsync(options, root, simulator, bearer, yarpDll, gatewayDll, upstream, work, machine, generator, clock);
            }

            var specs = new (string Name, string Description, Func<Task<Target>> Start)[]
            {
                (HarnessReport.Direct, "the simulator, called directly (the floor)",
                    () => Task.FromResult(new Target(HarnessReport.Direct, simulator.BaseAddress, bearer, simulator))),
                (HarnessReport.Yarp, "plain YARP pass-through (tests/TokenGateway.YarpBaseline)", async () =>
                {
                    var yarp = Track(ChildProcess.Start("yarp", "dotnet", [yarpDll, "--urls", Url(out var port), $"--Baseline:Destination={upstream}"], port));
                    await yarp.WaitHealthyAsync("healthz", TimeSpan.FromSeconds(60));
                    return new Target(HarnessReport.Yarp, yarp.BaseAddress, bearer, yarp);
                }),
                (HarnessReport.Passthrough, "TokenGateway, x-tokengateway-optimize: off, team without policy (auth + parse + count + metering + ledger)",
                    () => StartGatewayAsync(HarnessReport.Passthrough, gatewayDll, upstream, Path.Combine(work, "passthrough"), fullPipeline: false)),
                (HarnessReport.NoResilience, "TokenGateway pass-through with Resilience:Enabled=false (no attempts, planner, breakers or timers)",
                    () => StartGatewayAsync(HarnessReport.NoResilience, gatewayDll, upstream, Path.Combine(work, "no-resilience"), fullPipeline: false, shippedDefaults: false,
                        "--Resilience:Enabled=false")),
                (HarnessReport.Full, "TokenGateway, full pipeline: team policy with a hard budget, max_tokens default/cap and optimization",
                    () => StartGatewayAsync(HarnessReport.Full, gatewayDll, upstream, Path.Combine(work, "full"), fullPipeline: true)),
                (HarnessReport.Peer, $"Portkey AI gateway {PortkeyPeer.Version} (npm, node {machine.GetValueOrDefault("node", "?")})",
                    () => StartPeerAsync(options, upstream)),
            };

            var ordered = specs.Where(spec => options.Runs(spec.Name))
                .OrderBy(spec => options.TargetOrder is { } order ? order.TakeWhile(n => n != spec.Name).Count() : 0); // stable: the default order otherwise
            foreach (var (name, description, start) in ordered)
            {
                reports.Add(await MeasureTargetAsync(name, description, start, payloads, generator, options, clock));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or IOException)
        {
            Console.Error.WriteLine($"harness could not run: {e.Message}");
            return 1;
        }
        finally
        {
            KillChildren();
            TryDelete(work);
        }

        machine["loadAtEnd"] = LoadAverage();
        var settings = new Dictionary<string, string>
        {
            ["openLoopWarmupSeconds"] = options.Warmup.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["openLoopMeasureSeconds"] = options.Measure.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["openLoopRates"] = string.Join(", ", payloads.Select(p => $"{p.Name} {p.BaseRate * options.RateScale:0}/s")),
            ["throughputConnections"] = options.Connections.ToString(CultureInfo.InvariantCulture),
            ["targetWarmupSecondsPerPayload"] = options.TargetWarmup.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["throughputWarmupSeconds"] = options.ThroughputWarmup.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["throughputMeasureSeconds"] = options.ThroughputMeasure.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["streamMemory"] = string.Create(CultureInfo.InvariantCulture,
                $"{options.StreamCount} streams, latency={options.StreamPacing.TotalMilliseconds:0}ms per event; short {options.ShortStreamTokens} tokens sampled at 30% (cap {options.ShortStreamCap.TotalSeconds:0.#} s), long {options.LongStreamTokens} at 75% (cap {options.LongStreamCap.TotalSeconds:0.#} s); quorum 3/4 of the streams"),
            ["payloadBytes"] = string.Join(", ", payloads.Select(p => $"{p.Name} {p.Body.Length}")),
            ["configuration"] = configuration,
            ["targets"] = string.Join(", ", HarnessOptions.TargetNames.Where(options.Runs)),
            ["bodies"] = options.UniqueBodies ? "unique (per-request nonce in the last user message)" : "identical per payload",
            ["allocationCounterIntervalSeconds"] = RuntimeDiagnostics.CounterIntervalSeconds.ToString(CultureInfo.InvariantCulture),
            ["elapsedSeconds"] = clock.Elapsed.TotalSeconds.ToString("0", CultureInfo.InvariantCulture),
        };
        var report = HarnessReport.Compare(startedAt, options.Smoke ? "smoke" : "full", machine, settings, reports);
        Console.WriteLine();
        Console.WriteLine(report.ToTable());

        var output = options.OutputPath ?? Path.Combine(root, "artifacts", "perf", options.Smoke ? "smoke.json" : "results.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        await File.WriteAllTextAsync(output, report.ToJson());
        Console.WriteLine($"JSON: {output} ({clock.Elapsed.TotalSeconds:0} s)");
        return 0;
    }

    private static async Task<int> CompareAsync(HarnessOptions options, string root, ChildProcess simulator, Dictionary<string, string> bearer,
        string yarpDll, string gatewayDll, string upstream, string work, Dictionary<string, string> machine, LoadGenerator generator, Stopwatch clock)
    {
        var yarp = Track(ChildProcess.Start("yarp", "dotnet", [yarpDll, "--urls", Url(out var yarpPort), $"--Baseline:Destination={upstream}"], yarpPort));
        await yarp.WaitHealthyAsync("healthz", TimeSpan.FromSeconds(60));
        var gateway = await StartGatewayAsync(CompareRun.Defaults, gatewayDll, upstream, Path.Combine(work, "defaults"), fullPipeline: false, shippedDefaults: true);
        var targets = new Dictionary<string, Target>(StringComparer.Ordinal)
        {
            [HarnessReport.Direct] = new(HarnessReport.Direct, simulator.BaseAddress, bearer, simulator),
            [HarnessReport.Yarp] = new(HarnessReport.Yarp, yarp.BaseAddress, bearer, yarp),
            [CompareRun.Defaults] = gateway,
            [CompareRun.OptimizeOff] = gateway with
            {
                Name = CompareRun.OptimizeOff,
                Headers = new Dictionary<string, string>(gateway.Headers) { ["x-tokengateway-optimize"] = "off" },
            },
        };
        Console.WriteLine($"compare: {options.Repeat} repetitions of direct, yarp, gateway defaults, gateway optimize-off (alternating order)");
        var result = await CompareRun.RunAsync(options, targets, generator, clock);
        machine["loadAtEnd"] = LoadAverage();
        result["machine"] = new JsonObject(machine.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        result["gatewayConfiguration"] = "shipped appsettings.json (Serilog Information, console), team and key from the admin API, no team policy (default policy: optimization on)";
        result["elapsedSeconds"] = Math.Round(clock.Elapsed.TotalSeconds);
        var output = options.OutputPath ?? Path.Combine(root, "artifacts", "perf", "compare.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        await File.WriteAllTextAsync(output, result.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"JSON: {output} ({clock.Elapsed.TotalSeconds:0} s)");
        return 0;
    }

    private static async Task<TargetReport> MeasureTargetAsync(string name, string description, Func<Task<Target>> start,
        IReadOnlyList<Payload> payloads, LoadGenerator generator, HarnessOptions options, Stopwatch clock)
    {
        if (clock.Elapsed > options.Deadline)
        {
            return new TargetReport(name, description, "skipped", "run deadline reached", null, []);
        }

        Target target;
        try
        {
            target = await start();
        }
        catch (PeerUnavailableException e)
        {
            Console.WriteLine($"{name}: skipped — {e.Message}");
            return new TargetReport(name, description, "skipped", e.Message, null, []);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or IOException)
        {
            Console.WriteLine($"{name}: failed to start — {e.Message}");
            return new TargetReport(name, description, "failed", e.Message, null, []);
        }

        var results = new List<PayloadReport>();
        var notes = new List<string>();
        foreach (var payload in payloads)
        {
            if (payload.GatewayOnly && !name.StartsWith("tokengateway", StringComparison.Ordinal))
            {
                continue;
            }

            if (clock.Elapsed > options.Deadline)
            {
                notes.Add($"deadline reached before {payload.Name}");
                break;
            }

            await generator.WarmAsync(target, payload);
            var open = await generator.OpenLoopAsync(target, payload);
            var closed = await generator.ClosedLoopAsync(target, payload);
            results.Add(new PayloadReport(payload.Name, payload.Body.Length, open, closed));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-26}{payload.Name,-11} p50 {open.P50Us,8} µs  p99 {open.P99Us,8} µs  p99.9 {open.P999Us,8} µs  {closed.Rps,8:0} req/s  cpu {closed.CpuUsPerRequest,7:0} µs/req  alloc {(closed.AllocBytesPerRequest is { } alloc ? alloc.ToString("N0", CultureInfo.InvariantCulture) : target.Process.IsDotNet ? "-" : "n/a"),9} B/req  errors {open.Errors + closed.Errors}"));
            if ((open.FirstError ?? closed.FirstError) is { } error)
            {
                notes.Add($"{payload.Name}: {error}");
                Console.WriteLine($"  first error: {error}");
            }

            if (closed.AllocNote is { } allocNote)
            {
                notes.Add($"{payload.Name} allocations: {allocNote}");
                Console.WriteLine($"  allocations: {allocNote}");
            }
        }

        StreamMemoryResult? streamMemory = null;
        if (target.Process.IsDotNet && name != HarnessReport.Direct && clock.Elapsed < options.Deadline)
        {
            streamMemory = await new StreamMemoryProbe(options).MeasureAsync(target);
            Console.WriteLine(HarnessReport.StreamMemoryLine(name, streamMemory));
        }

        var peak = target.Process.PeakRssBytes();
        if (target.Process.Name != "simulator")
        {
            _children.Remove(target.Process);
            target.Process.Dispose();
        }

        return new TargetReport(name, description, "ok", notes.Count > 0 ? string.Join("; ", notes) : null, peak, results)
        {
            StreamMemory = streamMemory,
        };
    }

    /// <param name="shippedDefaults">
    /// The gateway as <c>dotnet run</c> ships it: the shipped log level (Information, console; the child's output is
    /// drained by the harness) instead of Warning, and no team policy.
    /// </param>
    /// <param name="extraSettings">More command-line settings (e.g. <c>--Resilience:Enabled=false</c>).</param>
    private static async Task<Target> StartGatewayAsync(string name, string dll, string upstream, string dataDirectory, bool fullPipeline,
        bool shippedDefaults = false, params string[] extraSettings)
    {
        var adminKey = "tga-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        List<string> arguments =
        [
            dll, "--urls", Url(out var port),
            $"--Providers:openai:Destinations:0={upstream}",
            "--Providers:openai:ForwardRequestHeaders:0=x-simulator-fault", // the fault payloads need it upstream
            $"--Providers:anthropic:Destinations:0={upstream}", // the translated payload (chat-1k-xlat)
            "--Gateway:Simulator=Never",
            $"--Storage:DataDirectory={dataDirectory}",
            .. extraSettings,
        ];
        if (!shippedDefaults)
        {
            arguments.Add("--Serilog:MinimumLevel:Default=Warning");
        }

        var gateway = Track(ChildProcess.Start(name, "dotnet", arguments,
            port, workingDirectory: Path.GetDirectoryName(dll),
            environment: new Dictionary<string, string> { ["OPENAI_API_KEY"] = ProviderKey, ["ANTHROPIC_API_KEY"] = ProviderKey, ["TOKENGATEWAY_ADMIN_KEY"] = adminKey }));
        await gateway.WaitHealthyAsync("healthz", TimeSpan.FromSeconds(60));

        using var admin = new HttpClient { BaseAddress = gateway.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", adminKey);
        var team = await ReadJsonAsync(await admin.PostAsJsonAsync("admin/teams", new { name = "bench-" + name }));
        var teamId = team["id"]!.GetValue<string>();
        var key = await ReadJsonAsync(await admin.PostAsJsonAsync($"admin/teams/{teamId}/keys", new { name = "bench" }));
        if (fullPipeline)
        {
            var policy = JsonNode.Parse("""
                {
                  "budget": { "usd": 1000000, "period": "month", "softAlertPercent": 80, "hard": true },
                  "maxTokens": { "default": 1024, "cap": 4096 },
                  "optimization": { "enabled": true, "compact": true, "dedupe": true, "trim": { "maxInputTokens": 60000 } }
                }
                """);
            using var put = await admin.PutAsJsonAsync($"admin/teams/{teamId}/policy", policy);
            if (!put.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"policy rejected: {(int)put.StatusCode} {await put.Content.ReadAsStringAsync()}");
            }
        }

        var headers = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key["key"]!.GetValue<string>() };
        if (!fullPipeline)
        {
            headers["x-tokengateway-optimize"] = "off";
        }

        return new Target(name, gateway.BaseAddress, headers, gateway);
    }

    private static async Task<Target> StartPeerAsync(HarnessOptions options, string upstream)
    {
        if (options.SkipPeer)
        {
            throw new PeerUnavailableException("--skip-peer");
        }

        var (script, reason) = await PortkeyPeer.EnsureInstalledAsync(options.PeerDirectory ?? PortkeyPeer.DefaultDirectory, options.NpmInstallTimeout);
        if (script is null)
        {
            throw new PeerUnavailableException(reason ?? "not installed");
        }

        ChildProcess peer;
        var port = ChildProcess.FreePort();
        try
        {
            // Portkey's server takes only a port (it binds every interface); the harness talks to it on 127.0.0.1.
            peer = Track(ChildProcess.Start(HarnessReport.Peer, "node", [script, $"--port={port}", "--headless"], port,
                environment: new Dictionary<string, string> { ["NODE_ENV"] = "production" }));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PeerUnavailableException($"node is not available ({e.Message})");
        }

        await peer.WaitHealthyAsync("", TimeSpan.FromSeconds(60), anyStatus: true);
        var headers = new Dictionary<string, string>
        {
            ["Authorization"] = "Bearer " + ProviderKey,
            ["x-portkey-provider"] = "openai",
            ["x-portkey-custom-host"] = upstream + "v1",
        };
        return new Target(HarnessReport.Peer, peer.BaseAddress, headers, peer);
    }

    private static string Url(out int port)
    {
        port = ChildProcess.FreePort();
        return $"http://127.0.0.1:{port}";
    }

    private static ChildProcess Track(ChildProcess child)
    {
        lock (_children)
        {
            _children.Add(child);
        }

        return child;
    }

    private static void KillChildren()
    {
        lock (_children)
        {
            foreach (var child in _children)
            {
                child.Dispose();
            }

            _children.Clear();
        }
    }

    private static async Task<JsonObject> ReadJsonAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"admin API {(int)response.StatusCode}: {text}");
            }

            return JsonNode.Parse(text)!.AsObject();
        }
    }

    private static async Task<Dictionary<string, string>> MachineAsync()
    {
        var machine = new Dictionary<string, string>
        {
            ["cpus"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
            ["loadAtStart"] = LoadAverage(),
        };
        if (File.Exists("/proc/meminfo") && File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)) is { } mem)
        {
            machine["memory"] = mem["MemTotal:".Length..].Trim();
        }

        if (File.Exists("/proc/cpuinfo") && File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) is { } cpu)
        {
            machine["cpuModel"] = cpu[(cpu.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }

        if (await PortkeyPeer.NodeVersionAsync() is { } node)
        {
            machine["node"] = node;
        }

        return machine;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private static string FindRepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "TokenGateway.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("TokenGateway.sln not found above " + AppContext.BaseDirectory);
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A child still held a file; the temp folder is left behind.
        }
    }
}

/// <summary>The peer cannot run here (no npm/node, no registry, install timed out): reported as skipped, not failed.</summary>
internal sealed class PeerUnavailableException(string message) : Exception(message);

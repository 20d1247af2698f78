using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Metering;
using TokenGateway.IntegrationTests.Infrastructure;
using TokenGateway.Storage.Ledger;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// kill -9 the gateway process mid-load, restart it on the same data directory, and check that every request the
/// client saw complete has exactly one usage event (reliability matrix E4). Runs alone: it starts two processes.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Kill9MidLoad_EveryAcknowledgedRequestHasExactlyOneEvent()
    {
        await using var simulator = await SimulatorServer.StartAsync(GatewayServer.ProviderKey);
        var data = Path.Combine(Path.GetTempPath(), "tg-kill-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var port = FreePort();
        var address = $"http://127.0.0.1:{port}/";

        using var first = StartGateway(simulator.Address, data, port);
        using var admin = new HttpClient { BaseAddress = new Uri(address) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);
        await WaitUntilReadyAsync(admin);
        var team = await (await admin.PostAsJsonAsync("/admin/teams", new { name = "crash" })).Content.ReadFromJsonAsync<JsonElement>();
        var teamId = team.GetProperty("id").GetString()!;
        var keyResponse = await (await admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = "k" })).Content.ReadFromJsonAsync<JsonElement>();
        var key = keyResponse.GetProperty("key").GetString()!;

        var acknowledged = new ConcurrentBag<string>();
        using var client = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 400 && !stop.IsCancellationRequested; i++)
            {
                try
                {
                    using var r = await client.PostAsync("/v1/chat/completions",
                        new StringContent($"{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"w{w} i{i}\"}}]}}", Encoding.UTF8, "application/json"), stop.Token);
                    var body = await r.Content.ReadAsStringAsync(stop.Token);
                    if (r.StatusCode == HttpStatusCode.OK && body.Contains("\"usage\"", StringComparison.Ordinal))
                    {
                        acknowledged.Add(r.Headers.GetValues("x-tokengateway-request-id").Single());
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                {
                    return; // the process was killed under us
                }
            }
        })).ToArray();

        while (acknowledged.Count < 100 && !stop.IsCancellationRequested)
        {
            await Task.Delay(20);
        }

        first.Kill(entireProcessTree: true); // SIGKILL: no shutdown hooks, no flush
        await first.WaitForExitAsync();
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        Assert.True(acknowledged.Count >= 100, $"only {acknowledged.Count} requests completed before the kill");

        using var second = StartGateway(simulator.Address, data, port);
        try
        {
            await WaitUntilReadyAsync(admin);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            long requests;
            do
            {
                await Task.Delay(200);
                var totals = await admin.GetFromJsonAsync<JsonElement>($"/admin/usage?teamId={teamId}");
                requests = totals.GetProperty("totals").GetProperty("requests").GetInt64();
            }
            while (requests < acknowledged.Count && DateTime.UtcNow < deadline);

            foreach (var id in acknowledged)
            {
                using var e = await admin.GetAsync($"/admin/usage/{id}");
                Assert.Equal(HttpStatusCode.OK, e.StatusCode);
            }

            // Exactly once: the team's event count can exceed the acknowledged set only by requests that were in
            // flight at the kill (served but not acknowledged), never by duplicates of acknowledged ones.
            var csv = await admin.GetStringAsync($"/admin/usage/export?teamId={teamId}");
            var ids = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(',')[0]).ToList();
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.True(ids.Count <= acknowledged.Count + 8, $"{ids.Count} events for {acknowledged.Count} acknowledged requests and 8 workers");
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }

    [Fact]
    public async Task Kill9WithSpendOnlyInTheJournal_ReadinessAndAdmissionWaitForTheReplay_BudgetEqualsLedger()
    {
        await using var simulator = await SimulatorServer.StartAsync(GatewayServer.ProviderKey);
        var data = Path.Combine(Path.GetTempPath(), "tg-replay-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var port = FreePort();
        var address = $"http://127.0.0.1:{port}/";
        using var admin = new HttpClient { BaseAddress = new Uri(address) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);

        // First process: the ledger writer holds events for up to a minute, so what it records stays in the journal.
        string teamId;
        string key;
        using (var first = StartGateway(simulator.Address, data, port, new Dictionary<string, string>
        {
            ["Storage__LedgerFlushInterval"] = "00:01:00",
            ["Storage__LedgerBatchSize"] = "100000",
        }))
        {
            await WaitUntilReadyAsync(admin);
            var team = await (await admin.PostAsJsonAsync("/admin/teams", new { name = "replay" })).Content.ReadFromJsonAsync<JsonElement>();
            teamId = team.GetProperty("id").GetString()!;
            (await admin.PutAsync($"/admin/teams/{teamId}/policy", new StringContent("""{"budget":{"usd":1000,"period":"month","hard":true}}""", Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
            key = (await (await admin.PostAsJsonAsync($"/admin/teams/{teamId}/keys", new { name = "k" })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            for (var i = 0; i < 10; i++)
            {
                using var r = await client.PostAsync("/v1/chat/completions", Chat($"spend {i}", 50));
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            }

            first.Kill(entireProcessTree: true); // SIGKILL: nothing flushed
            await first.WaitForExitAsync();
        }

        var journaled = Directory.GetFiles(data, "usage-ledger.journal*").Where(f => !f.EndsWith(".lock", StringComparison.Ordinal))
            .Sum(f => File.ReadAllLines(f).Count(l => l.Contains(teamId, StringComparison.Ordinal)));
        Assert.Equal(10, journaled);

        // Second instance on the same data: its replay reaches the store but cannot commit until the gate opens.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var second = await GatewayServer.StartAsync(
            new Dictionary<string, string?> { ["Storage:DataDirectory"] = data },
            services => GateLedgerStore(services, gate.Task));
        using var secondClient = second.CreateClient(key);

        using (var notReady = await second.Admin.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        }

        var pending = secondClient.PostAsync("/v1/chat/completions", Chat("after restart", 50));
        await Task.Delay(500);
        Assert.False(pending.IsCompleted, "admission must wait for the journal replay before seeding the budget");

        gate.SetResult();
        using (var admitted = await pending.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
        }

        using (var ready = await second.Admin.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        JsonElement totals;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        do
        {
            await Task.Delay(100);
            totals = (await second.Admin.GetFromJsonAsync<JsonElement>($"/admin/usage?teamId={teamId}")).GetProperty("totals");
        }
        while (totals.GetProperty("requests").GetInt64() < 11 && DateTime.UtcNow < deadline);

        Assert.Equal(11, totals.GetProperty("requests").GetInt64());
        var budget = await second.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        var ledgerUsd = totals.GetProperty("costUsd").GetDecimal();
        Assert.True(ledgerUsd > 0.0001m, $"ledger total {ledgerUsd}");
        // Counters are whole micro-dollars: the seed and each settle in this process round by less than 1 µ$ each.
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), ledgerUsd - 0.000002m, ledgerUsd + 0.000002m);
    }

    private static StringContent Chat(string text, int maxTokens) =>
        new($"{{\"model\":\"gpt-4o-mini\",\"max_tokens\":{maxTokens},\"messages\":[{{\"role\":\"user\",\"content\":\"{text}\"}}]}}", Encoding.UTF8, "application/json");

    /// <summary>Wraps the registered ledger store so no batch commits until <paramref name="gate"/> completes.</summary>
    private static void GateLedgerStore(IServiceCollection services, Task gate)
    {
        var registered = services.Single(d => d.ServiceType == typeof(ILedgerStore));
        services.Remove(registered);
        services.AddSingleton<ILedgerStore>(sp => new GatedLedgerStore((ILedgerStore)ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!), gate));
    }

    private sealed class GatedLedgerStore(ILedgerStore inner, Task gate) : ILedgerStore
    {
        public async Task<int> WriteBatchAsync(IReadOnlyList<UsageEvent> events, CancellationToken cancellationToken)
        {
            await gate.WaitAsync(cancellationToken);
            return await inner.WriteBatchAsync(events, cancellationToken);
        }
    }

    [Fact]
    public async Task Sigterm_LetsInFlightStreamFinishAndFlushesItsUsageEvent()
    {
        await using var simulator = await SimulatorServer.StartAsync(GatewayServer.ProviderKey);
        var data = Path.Combine(Path.GetTempPath(), "tg-term-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var port = FreePort();
        var address = $"http://127.0.0.1:{port}/";
        using var admin = new HttpClient { BaseAddress = new Uri(address) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayServer.AdminKey);

        string requestId;
        using (var gateway = StartGateway(simulator.Address, data, port))
        {
            await WaitUntilReadyAsync(admin);
            var team = await (await admin.PostAsJsonAsync("/admin/teams", new { name = "term" })).Content.ReadFromJsonAsync<JsonElement>();
            var key = await (await admin.PostAsJsonAsync($"/admin/teams/{team.GetProperty("id").GetString()}/keys", new { name = "k" })).Content.ReadFromJsonAsync<JsonElement>();
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.GetProperty("key").GetString());
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"drain me\"}]}", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("x-simulator-fault", "latency=100ms,output-tokens=20");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
            await using var stream = await response.Content.ReadAsStreamAsync();
            var first = new byte[64];
            Assert.True(await stream.ReadAsync(first) > 0);

            using (var term = Process.Start("kill", $"-TERM {gateway.Id}"))
            {
                await term!.WaitForExitAsync();
            }

            using var reader = new StreamReader(stream);
            var rest = await reader.ReadToEndAsync();
            Assert.Contains("data: [DONE]", rest, StringComparison.Ordinal);
            await gateway.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            Assert.Equal(0, gateway.ExitCode);
        }

        using var restarted = StartGateway(simulator.Address, data, port);
        try
        {
            await WaitUntilReadyAsync(admin);
            var e = await admin.GetFromJsonAsync<JsonElement>($"/admin/usage/{requestId}");
            Assert.Equal("ok", e.GetProperty("status").GetString());
            Assert.Equal(20, e.GetProperty("outputTokens").GetInt32());
        }
        finally
        {
            restarted.Kill(entireProcessTree: true);
            await restarted.WaitForExitAsync();
        }
    }

    private static Process StartGateway(string simulatorAddress, string dataDirectory, int port, IDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(RepoPaths.GatewayOutputDirectory(), "TokenGateway.dll");
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" --urls http://127.0.0.1:{port}")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepoPaths.GatewayOutputDirectory(),
        };
        info.Environment["TOKENGATEWAY_ADMIN_KEY"] = GatewayServer.AdminKey;
        info.Environment[GatewayServer.ProviderKeyEnv] = GatewayServer.ProviderKey;
        info.Environment["Gateway__Simulator"] = "Never";
        info.Environment["Storage__DataDirectory"] = dataDirectory;
        info.Environment["Serilog__MinimumLevel__Default"] = "Warning";
        info.Environment["Providers__openai__Destinations__0"] = simulatorAddress;
        info.Environment["Providers__openai__ApiKeyEnv"] = GatewayServer.ProviderKeyEnv;
        info.Environment["Providers__openai__ForwardRequestHeaders__0"] = "x-simulator-fault";
        info.Environment["Providers__anthropic__ForwardRequestHeaders__0"] = "x-simulator-fault";
        info.Environment["Providers__anthropic__Destinations__0"] = simulatorAddress;
        info.Environment["Providers__anthropic__ApiKeyEnv"] = GatewayServer.ProviderKeyEnv;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitUntilReadyAsync(HttpClient admin)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var r = await admin.GetAsync("/readyz");
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("gateway did not become ready");
            }

            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13: hard budgets hold across retries, stream cuts and stream continuations (the 64-way concurrent test with
/// faults), and an Anthropic-SDK request retried after 529s is billed once.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class HardBudgetFaultTests
{
    private const string Fault = "x-simulator-fault";

    [Fact]
    public async Task SixtyFourConcurrentRequestsWithFaults_SpendStaysWithinTheHardBudgetAndTheLedgerEqualsTheCounters()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Budgets:LowerMaxTokens"] = "false",
            ["Resilience:Retry:MaxAttempts"] = "3",
            ["Resilience:Retry:BaseDelay"] = "00:00:00.05",
            ["Resilience:Retry:MaxDelay"] = "00:00:00.1",
        });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("faulty-budget");
        const decimal limit = 0.02m; // about 15 worst-case reservations of the requests below
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new
        {
            budget = new { usd = limit, period = "day", hard = true },
            resilience = new { continueStreams = true },
        })).EnsureSuccessStatusCode();

        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = Guid.NewGuid().ToString("N");
        var pending = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            await start.Task;
            // Three kinds of trouble: a 503 retried once; an OpenAI stream cut mid-answer (stream error, billed for what
            // was delivered); an Anthropic stream cut mid-answer and continued (two billed attempts).
            var (path, body, fault) = (i % 3) switch
            {
                0 => ("/v1/chat/completions", (object)new { model = "gpt-4o", max_tokens = 100, messages = new[] { new { role = "user", content = $"retry {i}" } } },
                    $"scenario={run}-{i},first=1,status=503,latency=200ms"),
                1 => ("/v1/chat/completions", new { model = "gpt-4o", max_tokens = 100, stream = true, messages = new[] { new { role = "user", content = $"cut {i}" } } },
                    "reset-after=4,output-tokens=60,latency=50ms"),
                _ => ("/v1/messages", new { model = "claude-sonnet-4-5", max_tokens = 100, stream = true, messages = new[] { new { role = "user", content = $"continue {i}" } } },
                    $"scenario={run}-{i},first=1,reset-after=6,output-tokens=60,latency=50ms"),
            };
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            request.Headers.Add("x-api-key", key);
            request.Headers.Add("anthropic-version", "2023-06-01");
            request.Headers.Add(Fault, fault);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            try
            {
                await response.Content.ReadAsStringAsync(); // a cut stream ends abnormally
            }
            catch (HttpRequestException)
            {
            }
            catch (IOException)
            {
            }

            return response.StatusCode;
        })).ToArray();
        start.SetResult();
        var statuses = await Task.WhenAll(pending);

        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses); // the budget refused the rest at admission
        Assert.DoesNotContain(statuses, s => s is not (HttpStatusCode.OK or HttpStatusCode.TooManyRequests));

        // Settled: nothing reserved, spend within the hard limit, and the ledger (every attempt's event) equals the counters.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonElement budget;
        decimal ledgerCost;
        long events;
        while (true)
        {
            budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
            var totals = (await server.UsageAsync($"teamId={teamId}")).GetProperty("totals");
            ledgerCost = totals.GetProperty("costUsd").GetDecimal();
            events = totals.GetProperty("requests").GetInt64();
            var spentNow = budget.GetProperty("spentUsd").GetDecimal();
            if ((budget.GetProperty("reservedUsd").GetDecimal() == 0m && spentNow - ledgerCost is >= 0m && spentNow - ledgerCost <= events * 0.000001m && events >= 64)
                || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(200);
        }

        // Anthropic cuts were continued when the budget could take the re-sent prefix (their own attempt event), else
        // ended with the stream error; either way they are billed for what they delivered.
        var csv = await server.Admin.GetStringAsync($"/admin/usage/export?teamId={teamId}");
        var claudeCuts = csv.Split('\n').Count(l => l.Contains(",claude-sonnet-4-5,", StringComparison.Ordinal) && l.Contains(",200,true,", StringComparison.Ordinal)
            && l.Contains("upstream_error", StringComparison.Ordinal));
        Assert.True(claudeCuts > 0, "no Anthropic stream was cut");
        var spent = budget.GetProperty("spentUsd").GetDecimal();
        Assert.True(spent <= limit, $"spent {spent} of {limit}");
        Assert.Equal(0m, budget.GetProperty("reservedUsd").GetDecimal());
        Assert.True(events > 64, $"{events} events: the retried and continued attempts have their own"); // attempt events included
        Assert.InRange(spent - ledgerCost, 0m, events * 0.000001m); // counters keep whole micro-dollars, rounded up per event
    }

    [Fact]
    public async Task AnthropicSdk_529TwiceThenSuccess_200WithThreeAttemptsAndOneBilledAnswer()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Resilience:Retry:MaxAttempts"] = "3",
            ["Resilience:Retry:BaseDelay"] = "00:00:00.05",
            ["Resilience:Retry:MaxDelay"] = "00:00:00.1",
        });
        var capture = new CaptureHandler(Fault, $"scenario=s{Guid.NewGuid():N},first=2,status=529");
        var client = new AnthropicClient { ApiKey = server.VirtualKey, BaseUrl = server.Address.TrimEnd('/'), MaxRetries = 0, HttpClient = new HttpClient(capture) };

        var message = await client.Messages.Create(new MessageCreateParams
        {
            Model = "claude-sonnet-4-5",
            MaxTokens = 50,
            Messages = [new UserMessageParam { Content = "hello" }],
        });

        Assert.NotEmpty(message.Content);
        Assert.Equal("3", capture.Attempts);
        var requestId = capture.RequestId!;
        var own = await server.WaitForEventAsync(requestId);
        Assert.Equal("ok", own.GetProperty("status").GetString());
        var cost = own.GetProperty("costUsd").GetDecimal();
        Assert.True(cost > 0m);
        for (var n = 1; n <= 2; n++)
        {
            var attempt = await server.WaitForEventAsync($"{requestId}_attempt{n}");
            Assert.Equal("upstream_529", attempt.GetProperty("errorCode").GetString());
            Assert.Equal(0m, attempt.GetProperty("costUsd").GetDecimal());
        }

        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{server.TeamId}/budget");
        Assert.InRange(budget.GetProperty("spentUsd").GetDecimal(), cost, cost + 0.000001m); // one answer billed
    }

    /// <summary>Adds the fault header and keeps the gateway's request id and attempts header of the last response.</summary>
    private sealed class CaptureHandler(string header, string value) : DelegatingHandler(new SocketsHttpHandler())
    {
        public string? RequestId { get; private set; }

        public string? Attempts { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Remove(header);
            request.Headers.Add(header, value);
            var response = await base.SendAsync(request, cancellationToken);
            RequestId = response.Headers.TryGetValues("x-tokengateway-request-id", out var ids) ? ids.First() : null;
            Attempts = response.Headers.TryGetValues("x-tokengateway-attempts", out var a) ? a.First() : null;
            return response;
        }
    }
}

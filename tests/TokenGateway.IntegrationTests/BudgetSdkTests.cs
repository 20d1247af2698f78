using System.ClientModel;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Budgets as the official SDK sees them, the soft-alert webhook, and release on the timeout path.</summary>
[Collection(nameof(SerialCollection))]
public sealed class BudgetSdkTests
{
    [Fact]
    public async Task SoftAlert_PostsWebhookOncePerPeriod_AndHardLimitRaisesSdk429()
    {
        await using var webhook = await WebhookReceiver.StartAsync();
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Alerts:WebhookUrl"] = webhook.Address });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("alerts");
        var client = new ChatClient("gpt-4o", new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0), // a budget 429 says "retry after the period resets"
            NetworkTimeout = TimeSpan.FromSeconds(30),
        });
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 50 };

        // Price one call, then give the team a budget of about 4.5 calls with an alert at 50%.
        var probe = await client.CompleteChatAsync([new UserChatMessage("alert probe")], options);
        var requestId = probe.GetRawResponse().Headers.TryGetValue("x-tokengateway-request-id", out var id) ? id! : throw new InvalidOperationException();
        var worstCase = (probe.Value.Usage.InputTokenCount * 2.5m + 50 * 10m) / 1_000_000m;
        await server.WaitForEventAsync(requestId);
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { budget = new { usd = worstCase * 4.5m + 0.001m, period = "day", softAlertPercent = 50, hard = true } })).EnsureSuccessStatusCode();

        var succeeded = 0;
        ClientResultException? rejection = null;
        for (var i = 0; i < 40 && rejection is null; i++)
        {
            try
            {
                await client.CompleteChatAsync([new UserChatMessage($"spend {i}")], options);
                succeeded++;
            }
            catch (ClientResultException ex)
            {
                rejection = ex;
            }
        }

        Assert.NotNull(rejection);
        Assert.Equal(429, rejection!.Status);
        Assert.Contains("budget_exceeded", rejection.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
        Assert.True(succeeded >= 2, $"{succeeded} calls succeeded before the hard limit");

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (webhook.Received.IsEmpty && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        await Task.Delay(500); // a duplicate alert would have arrived by now
        var alert = Assert.Single(webhook.Received);
        Assert.Equal(teamId, alert.GetProperty("teamId").GetString());
        Assert.Equal(50, alert.GetProperty("thresholdPercent").GetInt32());
    }

    [Fact]
    public async Task Reservation_IsReleasedWhenTheUpstreamTimesOut()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?> { ["Gateway:UpstreamTimeout"] = "00:00:01" });
        var (teamId, key) = await server.CreateTeamWithKeyAsync("timeout");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { budget = new { usd = 1, period = "day", hard = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient(key);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = ProxySurfaceTests.Json(new { model = "gpt-4o", messages = new[] { new { role = "user", content = "slow" } } }),
        };
        request.Headers.Add("x-simulator-fault", "latency=3000ms");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);

        // The gateway writes the 504 and then, in the exchange's finally block, releases the reservation: the client can
        // read the answer a moment before the release (a reservation held that moment longer only makes the budget
        // stricter). Wait up to 5 s for it instead of racing it.
        var budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        for (var attempt = 0; attempt < 100 && budget.GetProperty("reservedUsd").GetDecimal() != 0m; attempt++)
        {
            await Task.Delay(50);
            budget = await server.Admin.GetFromJsonAsync<JsonElement>($"/admin/teams/{teamId}/budget");
        }

        Assert.Equal(0m, budget.GetProperty("reservedUsd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("spentUsd").GetDecimal());
    }

    private sealed class WebhookReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private WebhookReceiver(WebApplication app, string address)
        {
            _app = app;
            Address = address;
        }

        public string Address { get; }

        public ConcurrentQueue<JsonElement> Received { get; } = new();

        public static async Task<WebhookReceiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            WebhookReceiver? receiver = null;
            app.MapPost("/alerts", async (HttpContext context) =>
            {
                receiver!.Received.Enqueue(await context.Request.ReadFromJsonAsync<JsonElement>());
                return Results.Ok();
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            receiver = new WebhookReceiver(app, address.TrimEnd('/') + "/alerts");
            return receiver;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

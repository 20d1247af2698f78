using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace TokenGateway.IntegrationTests.Resilience;

/// <summary>
/// Issue #13, passive health: a destination whose breaker opened is marked unhealthy in YARP, so the cluster's load
/// balancer (and the gateway's own calls, which pick from the available destinations) skip it until the break ends.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class PassiveHealthTests
{
    [Fact]
    public async Task FailingDestination_BreakerOpens_YarpMarksItUnhealthyAndTheLoadBalancerSkipsIt()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Providers:openai:Destinations:1"] = "http://127.0.0.1:9", // nothing listens: connection refused
            ["Resilience:Retry:MaxAttempts"] = "2",
            ["Resilience:Retry:BaseDelay"] = "00:00:00.01",
            ["Resilience:Retry:MaxDelay"] = "00:00:00.05",
            ["Resilience:CircuitBreaker:MinimumThroughput"] = "2",
            ["Resilience:CircuitBreaker:FailureRatio"] = "0.5",
            ["Resilience:CircuitBreaker:BreakDuration"] = "00:00:30",
        });
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential(server.VirtualKey), new OpenAIClientOptions
        {
            Endpoint = server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(0),
        });
        var cluster = server.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("openai", out var state) ? state : throw new InvalidOperationException("no openai cluster");
        Assert.Equal(2, cluster.DestinationsState.AvailableDestinations.Count);

        // Until the dead destination's breaker opens, some requests go there first and are retried on the live one.
        for (var i = 0; i < 12 && cluster.Destinations["openai-1"].Health.Passive != DestinationHealth.Unhealthy; i++)
        {
            var result = await client.CompleteChatAsync([new UserChatMessage($"warm {i}")]);
            Assert.Equal(200, result.GetRawResponse().Status);
        }

        Assert.Equal(DestinationHealth.Unhealthy, cluster.Destinations["openai-1"].Health.Passive);
        Assert.NotEqual(DestinationHealth.Unhealthy, cluster.Destinations["openai-0"].Health.Passive);
        var available = cluster.DestinationsState.AvailableDestinations;
        Assert.Equal(["openai-0"], available.Select(d => d.DestinationId));

        // From now on every request is served by the live destination at its first attempt.
        for (var i = 0; i < 8; i++)
        {
            var result = await client.CompleteChatAsync([new UserChatMessage($"after {i}")]);
            Assert.True(result.GetRawResponse().Headers.TryGetValue("x-tokengateway-attempts", out var attempts));
            Assert.Equal("1", attempts);
        }
    }
}

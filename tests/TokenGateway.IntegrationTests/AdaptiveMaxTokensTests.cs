using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.Core.Budgets;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// The adaptive output cap through the official OpenAI SDK: after answers of a known length the forwarded
/// <c>max_completion_tokens</c> drops to p99 + margin, a smaller client value stands, and a truncated answer raises it.
/// </summary>
public sealed class AdaptiveMaxTokensTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly AdaptiveMaxTokensSettings Settings = new(Floor: 16, MarginPercent: 25, MinSamples: 20);

    private GatewayServer Server => fixture.Server;

    [Fact]
    public async Task AnswersOfKnownLength_LowerTheForwardedMaxTokens_TruncationRaisesIt()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("adaptive");
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new
        {
            maxTokens = new { cap = 4096, adaptive = new { enabled = true, floor = 16, marginPercent = 25, minSamples = 20 } },
        })).EnsureSuccessStatusCode();
        var caps = Server.Services.GetRequiredService<AdaptiveOutputCaps>();

        // Warm-up: 20 answers of exactly 40 tokens, each sent with the policy cap.
        for (var i = 0; i < 20; i++)
        {
            var warm = await Sdk(key, "output-tokens=40").CompleteChatAsync([new UserChatMessage($"warm-up {i}")]);
            Assert.Equal(40, warm.Value.Usage.OutputTokenCount);
            Assert.Equal(4096, ForwardedMaxTokens(warm.GetRawResponse()));
        }

        await WaitUntilAsync(() => caps.CapFor(teamId, "gpt-4o", Settings, 4096) is not null);

        // p99 = 40, + 25 % = 50: forwarded, reserved and announced.
        var learned = await Sdk(key, "output-tokens=40").CompleteChatAsync([new UserChatMessage("after warm-up")]);
        Assert.Equal(50, ForwardedMaxTokens(learned.GetRawResponse()));
        Assert.Equal("50", Header(learned.GetRawResponse(), "x-tokengateway-max-tokens-lowered"));

        // A smaller explicit client value is respected.
        var explicitSmall = await Sdk(key, "output-tokens=10").CompleteChatAsync([new UserChatMessage("short")], new ChatCompletionOptions { MaxOutputTokenCount = 30 });
        Assert.Equal(30, ForwardedMaxTokens(explicitSmall.GetRawResponse()));

        // An answer that wants 500 tokens is cut at 50 (finish_reason length): the route's cap doubles.
        var truncated = await Sdk(key, "output-tokens=500").CompleteChatAsync([new UserChatMessage("long answer")]);
        Assert.Equal(50, truncated.Value.Usage.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, truncated.Value.FinishReason);
        await WaitUntilAsync(() => caps.CapFor(teamId, "gpt-4o", Settings, 4096) == 100);

        var raised = await Sdk(key, "output-tokens=40").CompleteChatAsync([new UserChatMessage("after truncation")]);
        Assert.Equal(100, ForwardedMaxTokens(raised.GetRawResponse()));
    }

    private int ForwardedMaxTokens(PipelineResponse response)
    {
        var requestId = Header(response, "x-tokengateway-request-id")!;
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId)!;
        return JsonDocument.Parse(upstream.BodyText).RootElement.GetProperty("max_completion_tokens").GetInt32();
    }

    private static string? Header(PipelineResponse response, string name) => response.Headers.TryGetValue(name, out var value) ? value : null;

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the completed answers were not observed in time");
            await Task.Delay(20);
        }
    }

    private ChatClient Sdk(string key, string fault)
    {
        var options = new OpenAIClientOptions { Endpoint = Server.OpenAIEndpoint, NetworkTimeout = TimeSpan.FromSeconds(30) };
        options.AddPolicy(new HeaderPolicy("x-simulator-fault", fault), PipelinePosition.PerCall);
        return new ChatClient("gpt-4o", new ApiKeyCredential(key), options);
    }

    private sealed class HeaderPolicy(string name, string value) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set(name, value);
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}

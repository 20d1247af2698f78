using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Responses;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Translation;

#pragma warning disable OPENAI001 // the Responses surface is marked experimental in the SDK

/// <summary>
/// The official OpenAI SDK's Responses client calls a Claude model through the gateway (issue #16): the request goes
/// to the provider's <c>/v1/messages</c>, the answer and the stream come back as Responses objects and events.
/// </summary>
public sealed partial class TranslationSdkTests
{
    [Fact]
    public async Task ResponsesSdk_ClaudeModel_NonStreamed_TranslatedAndLedgerEqualsSdkUsage()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-rs-json");
        var client = OpenAIResponses(key);

        var result = await client.CreateResponseAsync(new CreateResponseOptions(Claude, [ResponseItem.CreateUserMessageItem("Say hello to the gateway.")])
        {
            Instructions = "You are terse.",
            MaxOutputTokenCount = 40,
        });

        var response = result.Value;
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.False(string.IsNullOrWhiteSpace(response.GetOutputText()));
        Assert.Equal(Claude, response.Model);
        Assert.StartsWith("resp_", response.Id, StringComparison.Ordinal);
        var requestId = RequestId(result.GetRawResponse());
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId)!;
        Assert.Equal("/v1/messages", upstream.PathAndQuery);
        var sent = JsonNode.Parse(upstream.BodyText)!.AsObject();
        Assert.Equal("You are terse.", (string)sent["system"]!);
        Assert.Equal(40, (int)sent["max_tokens"]!);

        var usage = response.Usage;
        Assert.True(usage.OutputTokenCount > 0);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        var e = await Server.WaitForEventAsync(requestId);
        Assert.Equal("ok", e.GetProperty("status").GetString());
        Assert.Equal("anthropic", e.GetProperty("provider").GetString());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        AssertLedger(e, Claude, usage.InputTokenCount, usage.OutputTokenCount, usage.InputTokenDetails?.CachedTokenCount ?? 0);
        Assert.Equal(teamId, e.GetProperty("teamId").GetString());
    }

    [Fact]
    public async Task ResponsesSdk_ClaudeModel_Streamed_EventsInOrderAndLedgerEqualsCompletedUsage()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-rs-sse");
        var client = OpenAIResponses(key);
        var text = new StringBuilder();
        var sequence = new List<int>();
        string? doneText = null;
        ResponseResult? completed = null;
        var deltas = 0;

        await foreach (var update in await client.CreateResponseStreamingAsync(
            new CreateResponseOptions(Claude, [ResponseItem.CreateUserMessageItem("Stream a short answer.")]) { MaxOutputTokenCount = 30, StreamingEnabled = true }))
        {
            sequence.Add(update.SequenceNumber);
            switch (update)
            {
                case StreamingResponseOutputTextDeltaUpdate delta:
                    deltas++;
                    text.Append(delta.Delta);
                    break;
                case StreamingResponseOutputTextDoneUpdate done:
                    doneText = done.Text;
                    break;
                case StreamingResponseCompletedUpdate end:
                    completed = end.Response;
                    break;
                default:
                    break;
            }
        }

        Assert.True(deltas > 2, $"{deltas} text deltas: the answer must arrive as a stream");
        Assert.Equal(Enumerable.Range(0, sequence.Count), sequence); // sequence_number on every event, in order from 0
        Assert.False(string.IsNullOrWhiteSpace(text.ToString()));
        Assert.Equal(text.ToString(), doneText);
        Assert.NotNull(completed);
        Assert.Equal(ResponseStatus.Completed, completed!.Status);
        Assert.Equal(text.ToString(), completed.GetOutputText());
        var recorded = Server.Simulator.Recorder.Snapshot().Last(r => r.PathAndQuery == "/v1/messages" && r.BodyText.Contains("Stream a short answer.", StringComparison.Ordinal));
        Assert.True(JsonNode.Parse(recorded.BodyText)!["stream"]!.GetValue<bool>());

        var e = await SingleEventAsync(teamId);
        Assert.True(e.GetProperty("stream").GetBoolean());
        Assert.False(e.GetProperty("estimated").GetBoolean());
        var usage = completed.Usage;
        AssertLedger(e, Claude, usage.InputTokenCount, usage.OutputTokenCount, usage.InputTokenDetails?.CachedTokenCount ?? 0);
    }

    [Fact]
    public async Task ResponsesSdk_ClaudeModel_FunctionCallAndOutputRoundTrip_CallIdPreservedAndLedgerSumsBothCalls()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-rs-tools");
        var client = OpenAIResponses(key);
        var tool = ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherSchema), strictModeEnabled: false, functionDescription: "Current weather for a city");
        List<ResponseItem> input = [ResponseItem.CreateUserMessageItem("What is the weather in Paris?")];
        var options = new CreateResponseOptions(Claude, input) { Tools = { tool }, ToolChoice = ResponseToolChoice.CreateRequiredChoice(), MaxOutputTokenCount = 200 };

        ResponseResult first = await client.CreateResponseAsync(options);

        var call = Assert.IsType<FunctionCallResponseItem>(Assert.Single(first.OutputItems));
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("toolu_", call.CallId, StringComparison.Ordinal); // the provider's tool_use id, kept for the round trip
        Assert.NotNull(JsonNode.Parse(call.FunctionArguments.ToString())!["city"]);

        input.Add(call);
        input.Add(ResponseItem.CreateFunctionCallOutputItem(call.CallId, """{"temperature_c":18,"sky":"clear"}"""));
        ResponseResult second = await client.CreateResponseAsync(new CreateResponseOptions(Claude, input) { Tools = { tool }, MaxOutputTokenCount = 40 });

        Assert.Equal(ResponseStatus.Completed, second.Status);
        Assert.False(string.IsNullOrWhiteSpace(second.GetOutputText()));
        // The provider received the tool_use and its tool_result under the same id, in Anthropic's shape.
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.Snapshot().Last(r => r.BodyText.Contains("temperature_c", StringComparison.Ordinal)).BodyText)!;
        var messages = upstream["messages"]!.AsArray();
        Assert.Equal("tool_use", (string)messages[1]!["content"]![0]!["type"]!);
        Assert.Equal(call.CallId, (string)messages[1]!["content"]![0]!["id"]!);
        Assert.Equal("tool_result", (string)messages[2]!["content"]![0]!["type"]!);
        Assert.Equal(call.CallId, (string)messages[2]!["content"]![0]!["tool_use_id"]!);

        var totals = await TeamTotalsAsync(teamId, requests: 2);
        Assert.Equal(first.Usage.InputTokenCount + second.Usage.InputTokenCount, totals.GetProperty("inputTokensSent").GetInt32());
        Assert.Equal(first.Usage.OutputTokenCount + second.Usage.OutputTokenCount, totals.GetProperty("outputTokens").GetInt32());
        Assert.Equal(Cost(Claude, first.Usage.InputTokenCount, first.Usage.OutputTokenCount, 0) + Cost(Claude, second.Usage.InputTokenCount, second.Usage.OutputTokenCount, 0),
            totals.GetProperty("costUsd").GetDecimal());
    }

    [Fact]
    public async Task ResponsesSdk_ClaudeModel_StreamedFunctionCall_ArgumentsDeltasAddUpToTheDoneItem()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-rs-tools-sse");
        var client = OpenAIResponses(key);
        var tool = ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherSchema), strictModeEnabled: false);
        var arguments = new StringBuilder();
        FunctionCallResponseItem? done = null;
        ResponseResult? completed = null;

        await foreach (var update in await client.CreateResponseStreamingAsync(new CreateResponseOptions(Claude, [ResponseItem.CreateUserMessageItem("Weather in Oslo?")])
        {
            Tools = { tool },
            ToolChoice = ResponseToolChoice.CreateRequiredChoice(),
            MaxOutputTokenCount = 200,
            StreamingEnabled = true,
        }))
        {
            switch (update)
            {
                case StreamingResponseFunctionCallArgumentsDeltaUpdate delta:
                    arguments.Append(delta.Delta.ToString());
                    break;
                case StreamingResponseOutputItemDoneUpdate { Item: FunctionCallResponseItem item }:
                    done = item;
                    break;
                case StreamingResponseCompletedUpdate end:
                    completed = end.Response;
                    break;
                default:
                    break;
            }
        }

        Assert.NotNull(done);
        Assert.Equal("get_weather", done!.FunctionName);
        Assert.StartsWith("toolu_", done.CallId, StringComparison.Ordinal);
        Assert.Equal(arguments.ToString(), done.FunctionArguments.ToString());
        Assert.NotNull(JsonNode.Parse(arguments.ToString())!["city"]);
        Assert.NotNull(completed);
        Assert.Equal(done.CallId, Assert.IsType<FunctionCallResponseItem>(Assert.Single(completed!.OutputItems)).CallId);
        var e = await SingleEventAsync(teamId);
        AssertLedger(e, Claude, completed.Usage.InputTokenCount, completed.Usage.OutputTokenCount, 0);
    }

    [Fact]
    public async Task ResponsesSdk_ClaudeModel_JsonSchemaTextFormat_SentAsNativeStructuredOutputAndAnswerMatches()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("tr-rs-schema");
        var client = OpenAIResponses(key);
        var options = new CreateResponseOptions(Claude, [ResponseItem.CreateUserMessageItem("Invent a person.")])
        {
            TextOptions = new ResponseTextOptions
            {
                TextFormat = ResponseTextFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(PersonSchema), jsonSchemaIsStrict: true),
            },
            MaxOutputTokenCount = 200,
        };

        var result = await client.CreateResponseAsync(options);

        var person = JsonNode.Parse(result.Value.GetOutputText())!.AsObject();
        Assert.Equal(JsonValueKind.String, person["name"]!.GetValueKind());
        Assert.True(person["age"]!.GetValue<int>() >= 0);
        var upstream = JsonNode.Parse(Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", RequestId(result.GetRawResponse()))!.BodyText)!;
        Assert.Equal("json_schema", (string)upstream["output_config"]!["format"]!["type"]!);
        Assert.Null(upstream["text"]);
        var e = await SingleEventAsync(teamId);
        AssertLedger(e, Claude, result.Value.Usage.InputTokenCount, result.Value.Usage.OutputTokenCount, 0);
    }

    [Fact]
    public async Task ResponsesSdk_ClaudeModel_ProviderRateLimit_ArrivesAsOpenAIErrorWithStatus()
    {
        var (_, key) = await Server.CreateTeamWithKeyAsync("tr-rs-429");
        var client = OpenAIResponses(key, fault: "status=429");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.CreateResponseAsync(
            new CreateResponseOptions(Claude, [ResponseItem.CreateUserMessageItem("hi")])));

        Assert.Equal(429, ex.Status);
        var error = JsonNode.Parse(ex.GetRawResponse()!.Content.ToString())!["error"]!.AsObject();
        Assert.Equal("rate_limit_error", (string)error["type"]!);
        Assert.Contains("Simulated upstream error", (string)error["message"]!, StringComparison.Ordinal);
    }

    private ResponsesClient OpenAIResponses(string key, string? fault = null)
    {
        var options = new ResponsesClientOptions
        {
            Endpoint = Server.OpenAIEndpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(30),
        };
        if (fault is not null)
        {
            options.AddPolicy(new FaultHeaderPolicy(fault), PipelinePosition.PerCall);
        }

        return new ResponsesClient(new ApiKeyCredential(key), options);
    }
}

using System.ClientModel;
using System.ClientModel.Primitives;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using OpenAI;
using OpenAI.Chat;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Structured-output enforcement through the gateway: validation, free local repair, metered repair calls, streaming, registry.</summary>
public sealed class StructuredOutputTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private const string Fault = "x-simulator-fault";

    private static readonly string PersonSchema = """
        {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0},"tags":{"type":"array","items":{"type":"string"}}},
         "required":["name","age","tags"],"additionalProperties":false}
        """;

    private GatewayServer Server => fixture.Server;

    private static bool Valid(string schema, string answer)
    {
        var compiled = JsonSchema.FromText(schema, baseUri: new Uri($"https://it.test/{Guid.NewGuid():N}"));
        using var doc = JsonDocument.Parse(answer);
        return compiled.Evaluate(doc.RootElement).IsValid;
    }

    private ChatClient Sdk(string? fault = null, string? key = null)
    {
        var options = new OpenAIClientOptions { Endpoint = Server.OpenAIEndpoint };
        if (fault is not null)
        {
            options.AddPolicy(new HeaderPolicy(Fault, fault), PipelinePosition.PerCall);
        }

        return new ChatClient("gpt-4o-mini", new ApiKeyCredential(key ?? Server.VirtualKey), options);
    }

    private static ChatCompletionOptions SchemaOptions() => new()
    {
        ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(PersonSchema), jsonSchemaIsStrict: true),
    };

    private static StringContent ChatBody(bool stream = false, string? schema = null, string model = "gpt-4o-mini")
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Describe a person." }),
        };
        if (schema is not null)
        {
            body["response_format"] = new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = "person", ["strict"] = true, ["schema"] = JsonNode.Parse(schema) },
            };
        }

        if (stream)
        {
            body["stream"] = true;
        }

        return new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, string path, HttpContent content, string? fault = null, string? schemaHeader = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (fault is not null)
        {
            request.Headers.Add(Fault, fault);
        }

        if (schemaHeader is not null)
        {
            request.Headers.Add("x-tokengateway-schema", schemaHeader);
        }

        return await http.SendAsync(request);
    }

    private static string RequestId(HttpResponseMessage response) => response.Headers.GetValues("x-tokengateway-request-id").Single();

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : null;

    [Fact]
    public async Task SdkTypedJsonSchema_ValidFirstTime_PassesThroughUntouched()
    {
        var result = await Sdk().CompleteChatAsync([new UserChatMessage("Describe a person.")], SchemaOptions());

        var text = result.Value.Content[0].Text;
        Assert.True(Valid(PersonSchema, text), text);
        var raw = result.GetRawResponse();
        Assert.False(raw.Headers.TryGetValue("x-tokengateway-schema-repaired", out _));
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-request-id", out var requestId));
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId!)!;
        Assert.Contains("\"strict\":true", upstream.BodyText.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Null(Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1"));
    }

    [Fact]
    public async Task InvalidAnswer_RepairedByOneCall_ClientGetsValidAnswerAndLedgerShowsRepairCost()
    {
        using var http = Server.CreateClient();

        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody(schema: PersonSchema), fault: "invalid-json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1", Header(response, "x-tokengateway-schema-repaired"));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var answer = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(Valid(PersonSchema, answer), answer);

        var requestId = RequestId(response);
        var original = await Server.WaitForEventAsync(requestId);
        var repair = await Server.WaitForEventAsync(requestId + "_repair1");
        Assert.Equal(requestId, repair.GetProperty("parentRequestId").GetString());
        Assert.Equal("repair", repair.GetProperty("attempt").GetString());
        Assert.True(repair.GetProperty("costUsd").GetDecimal() > 0);
        Assert.Equal(Server.TeamId, repair.GetProperty("teamId").GetString());

        // The client's usage covers both attempts; the cost header both costs.
        var usage = body.GetProperty("usage");
        var billedInput = original.GetProperty("inputTokens").GetInt32() + repair.GetProperty("inputTokens").GetInt32();
        Assert.Equal(billedInput, usage.GetProperty("prompt_tokens").GetInt32());
        var cost = decimal.Parse(Header(response, "x-tokengateway-cost-usd")!, CultureInfo.InvariantCulture);
        Assert.Equal(original.GetProperty("costUsd").GetDecimal() + repair.GetProperty("costUsd").GetDecimal(), cost, 8);

        // The repair call carried the invalid answer and the errors.
        var upstreamRepair = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1")!;
        Assert.Contains("does not validate against the required JSON schema", upstreamRepair.BodyText, StringComparison.Ordinal);
        Assert.Equal("Bearer " + GatewayServer.ProviderKey, upstreamRepair.Headers["Authorization"]);
    }

    [Fact]
    public async Task InvalidBeyondRepair_Returns502WithPointerErrors()
    {
        using var http = Server.CreateClient();

        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody(schema: PersonSchema), fault: "invalid-json=always");

        var error = await ErrorHandlingTests.AssertOpenAIErrorAsync(response, HttpStatusCode.BadGateway, "schema_validation_failed");
        var errors = error.GetProperty("errors");
        Assert.True(errors.GetArrayLength() > 0);
        Assert.All(errors.EnumerateArray(), e => Assert.True(e.TryGetProperty("pointer", out _) && e.GetProperty("message").GetString()!.Length > 0));
        var requestId = RequestId(response);
        var original = await Server.WaitForEventAsync(requestId);
        Assert.Equal("schema_invalid", original.GetProperty("status").GetString());
        var repair = await Server.WaitForEventAsync(requestId + "_repair1");
        Assert.Equal("repair", repair.GetProperty("attempt").GetString());
    }

    [Fact]
    public async Task PassthroughPolicy_InvalidAnswerDeliveredWithHeader()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("so-passthrough");
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { structuredOutput = new { onFailure = "passthrough", maxRepairs = 0 } })).EnsureSuccessStatusCode();
        using var http = Server.CreateClient(key);

        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody(schema: PersonSchema), fault: "invalid-json=always");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("true", Header(response, "x-tokengateway-schema-invalid"));
        Assert.Null(Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", RequestId(response) + "_repair1"));
    }

    [Fact]
    public async Task FencedJson_FixedLocallyAtZeroExtraTokens()
    {
        var result = await Sdk(fault: "fenced-json").CompleteChatAsync([new UserChatMessage("Describe a person.")], SchemaOptions());

        var text = result.Value.Content[0].Text;
        Assert.True(Valid(PersonSchema, text), text);
        var raw = result.GetRawResponse();
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-schema-repaired", out var repaired));
        Assert.Equal("0", repaired);
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-schema-local-fixes", out var fixes));
        Assert.Contains("code_fence", fixes, StringComparison.Ordinal);
        Assert.True(raw.Headers.TryGetValue("x-tokengateway-request-id", out var requestId));
        Assert.Null(Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1"));
        var e = await Server.WaitForEventAsync(requestId!);
        Assert.Equal(result.Value.Usage.InputTokenCount, e.GetProperty("inputTokens").GetInt32());
        Assert.Equal(result.Value.Usage.OutputTokenCount, e.GetProperty("outputTokens").GetInt32());
    }

    [Fact]
    public async Task StreamingValidateAtEnd_ValidAnswerStreamsNormally()
    {
        var text = new StringBuilder();
        await foreach (var update in Sdk().CompleteChatStreamingAsync([new UserChatMessage("Describe a person.")], SchemaOptions()))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.True(Valid(PersonSchema, text.ToString()), text.ToString());
    }

    [Fact]
    public async Task StreamingValidateAtEnd_InvalidAnswerEndsWithErrorEvent()
    {
        using var http = Server.CreateClient();

        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody(stream: true, schema: PersonSchema), fault: "invalid-json=always");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sse = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"code\":\"schema_validation_failed\"", sse, StringComparison.Ordinal);
        Assert.DoesNotContain("data: [DONE]", sse, StringComparison.Ordinal);
        var e = await Server.WaitForEventAsync(RequestId(response));
        Assert.Equal("schema_invalid", e.GetProperty("status").GetString());
        Assert.True(e.GetProperty("outputTokens").GetInt32() > 0);
    }

    [Fact]
    public async Task StreamingBufferMode_RepairsThenReplaysWellFormedSse()
    {
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("so-buffer");
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { structuredOutput = new { streaming = "buffer" } })).EnsureSuccessStatusCode();
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        var options = SchemaOptions();

        var prompt = "Describe a buffered person " + Guid.NewGuid().ToString("N");
        await foreach (var update in Sdk(fault: "invalid-json", key: key).CompleteChatStreamingAsync([new UserChatMessage(prompt)], options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.True(Valid(PersonSchema, text.ToString()), text.ToString());
        Assert.NotNull(usage);
        var upstream = Server.Simulator.Recorder.Snapshot().Where(r => r.BodyText.Contains(prompt, StringComparison.Ordinal)).ToList();
        Assert.Equal(2, upstream.Count); // the non-streamed call and its repair
        Assert.All(upstream, r => Assert.DoesNotContain("\"stream\"", r.BodyText, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Registry_VersionsListAndHeaderSelection()
    {
        var name = "person-" + Guid.NewGuid().ToString("N")[..8];
        var v1 = await Server.Admin.PostAsJsonAsync("/admin/schemas", new { name, schema = JsonNode.Parse("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}""") });
        Assert.Equal(HttpStatusCode.Created, v1.StatusCode);
        var v2 = await Server.Admin.PostAsJsonAsync("/admin/schemas", new { name, schema = JsonNode.Parse(PersonSchema), description = "with age" });
        Assert.Equal(2, (await v2.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("version").GetInt32());

        var list = await Server.Admin.GetFromJsonAsync<JsonElement>("/admin/schemas");
        var entry = list.GetProperty("schemas").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);
        Assert.Equal(2, entry.GetProperty("latestVersion").GetInt32());
        var latest = await Server.Admin.GetFromJsonAsync<JsonElement>($"/admin/schemas/{name}");
        Assert.Equal("with age", latest.GetProperty("description").GetString());
        var first = await Server.Admin.GetFromJsonAsync<JsonElement>($"/admin/schemas/{name}/versions/1");
        Assert.Equal(1, first.GetProperty("version").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, (await Server.Admin.GetAsync($"/admin/schemas/{name}/versions/9")).StatusCode);

        using var http = Server.CreateClient();
        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody(), schemaHeader: name);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"{name}@2", Header(response, "x-tokengateway-schema"));
        var answer = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(Valid(PersonSchema, answer), answer);
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", RequestId(response))!;
        Assert.Contains("\"response_format\"", upstream.BodyText, StringComparison.Ordinal);
        Assert.False(upstream.Headers.ContainsKey("x-tokengateway-schema"));
    }

    [Fact]
    public async Task PolicySchema_AppliedToRequestsWithoutOne()
    {
        var name = "policy-" + Guid.NewGuid().ToString("N")[..8];
        (await Server.Admin.PostAsJsonAsync("/admin/schemas", new { name, schema = JsonNode.Parse(PersonSchema) })).EnsureSuccessStatusCode();
        var (teamId, key) = await Server.CreateTeamWithKeyAsync("so-policy");
        (await Server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy", new { structuredOutput = new { schema = name } })).EnsureSuccessStatusCode();
        using var http = Server.CreateClient(key);

        using var response = await PostAsync(http, "/v1/chat/completions", ChatBody());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(Valid(PersonSchema, answer), answer);
    }

    [Fact]
    public async Task MalformedSchemas_RejectedWith400()
    {
        using var http = Server.CreateClient();

        using var badType = await PostAsync(http, "/v1/chat/completions", ChatBody(schema: """{"type": 12}"""));
        using var missing = await PostAsync(http, "/v1/chat/completions", new StringContent(
            """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}""",
            Encoding.UTF8, "application/json"));
        using var unknown = await PostAsync(http, "/v1/chat/completions", ChatBody(), schemaHeader: "no-such-schema");
        var adminBad = await Server.Admin.PostAsJsonAsync("/admin/schemas", new { name = "bad", schema = JsonNode.Parse("""{"minimum":"zero"}""") });

        var error = await ErrorHandlingTests.AssertOpenAIErrorAsync(badType, HttpStatusCode.BadRequest, "invalid_request");
        Assert.Contains("schema", error.GetProperty("message").GetString()!, StringComparison.OrdinalIgnoreCase);
        await ErrorHandlingTests.AssertOpenAIErrorAsync(missing, HttpStatusCode.BadRequest, "invalid_request");
        await ErrorHandlingTests.AssertOpenAIErrorAsync(unknown, HttpStatusCode.BadRequest, "invalid_request");
        Assert.Equal(HttpStatusCode.BadRequest, adminBad.StatusCode);
    }

    [Fact]
    public async Task AnthropicForcedTool_ValidInputValidatedAndUntouched()
    {
        using var http = Server.CreateClient();
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 512,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Describe a person." }),
            ["tools"] = new JsonArray(new JsonObject { ["name"] = "person", ["description"] = "A person", ["input_schema"] = JsonNode.Parse(PersonSchema) }),
            ["tool_choice"] = new JsonObject { ["type"] = "tool", ["name"] = "person" },
        };

        using var response = await PostAsync(http, "/v1/messages", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("person", Header(response, "x-tokengateway-schema"));
        Assert.Null(Header(response, "x-tokengateway-schema-repaired"));
        var message = await response.Content.ReadFromJsonAsync<JsonElement>();
        var input = message.GetProperty("content").EnumerateArray().Single(b => b.GetProperty("type").GetString() == "tool_use").GetProperty("input");
        Assert.True(Valid(PersonSchema, input.GetRawText()), input.GetRawText());
    }

    [Fact]
    public async Task AnthropicWithoutNativeSupport_GetsInstructionAndProseAnswerFailsIn502AnthropicEnvelope()
    {
        using var http = Server.CreateClient();
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 256,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Describe a person." }),
            ["output_format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = JsonNode.Parse(PersonSchema) },
        };

        using var response = await PostAsync(http, "/v1/messages", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal("schema_validation_failed", error.GetProperty("error").GetProperty("code").GetString());
        var requestId = RequestId(response);
        var upstream = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId)!;
        Assert.DoesNotContain("output_format", upstream.BodyText, StringComparison.Ordinal);
        Assert.Contains("Reply with only one JSON value", upstream.BodyText, StringComparison.Ordinal);
        var repair = Server.Simulator.Recorder.FindByHeader("x-tokengateway-request-id", requestId + "_repair1")!;
        Assert.Equal(GatewayServer.ProviderKey, repair.Headers["x-api-key"]);
    }

    [Fact]
    public async Task ResponsesTextFormat_InvalidAnswerRepaired()
    {
        using var http = Server.CreateClient();
        var body = new JsonObject
        {
            ["model"] = "gpt-4o-mini",
            ["input"] = "Describe a person.",
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "person", ["strict"] = true, ["schema"] = JsonNode.Parse(PersonSchema) } },
        };

        using var response = await PostAsync(http, "/v1/responses", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), fault: "invalid-json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1", Header(response, "x-tokengateway-schema-repaired"));
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        var text = result.GetProperty("output").EnumerateArray().Single(i => i.GetProperty("type").GetString() == "message")
            .GetProperty("content")[0].GetProperty("text").GetString()!;
        Assert.True(Valid(PersonSchema, text), text);
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

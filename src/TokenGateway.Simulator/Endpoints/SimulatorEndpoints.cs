using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Dialects;
using TokenGateway.Simulator.Faults;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>
/// The shared request pipeline of every simulator route: read and record the body, authenticate, parse faults, wait
/// the injected latency, inject a status fault, validate, then hand over to the dialect's responder.
/// </summary>
internal sealed partial class SimulatorEndpoints(
    IOptions<SimulatorOptions> options,
    SimulatorRecorder recorder,
    PromptCache cache,
    FaultScenarios scenarios,
    RateLimitHeaders rateLimits,
    TimeProvider time,
    ILogger<SimulatorEndpoints> logger)
{
    private readonly SimulatorOptions _options = options.Value;
    private readonly byte[]? _apiKey = options.Value.RequiredApiKey is { Length: > 0 } key ? Encoding.UTF8.GetBytes(key) : null;

    public Task ChatCompletionsAsync(HttpContext context) => RunAsync(context, LlmDialect.OpenAIChat, ChatCompletionsResponder.RespondAsync);

    public Task AzureChatCompletionsAsync(HttpContext context) => RunAsync(context, LlmDialect.OpenAIChat, ChatCompletionsResponder.RespondAsync, azure: true);

    public Task ResponsesAsync(HttpContext context) => RunAsync(context, LlmDialect.OpenAIResponses, ResponsesResponder.RespondAsync);

    public Task EmbeddingsAsync(HttpContext context) => RunAsync(context, LlmDialect.OpenAIEmbeddings, EmbeddingsResponder.RespondAsync);

    public Task AzureEmbeddingsAsync(HttpContext context) => RunAsync(context, LlmDialect.OpenAIEmbeddings, EmbeddingsResponder.RespondAsync, azure: true);

    public Task MessagesAsync(HttpContext context) => RunAsync(context, LlmDialect.AnthropicMessages, MessagesResponder.RespondAsync);

    public Task CountTokensAsync(HttpContext context) => RunAsync(context, LlmDialect.AnthropicCountTokens, MessagesResponder.CountTokensAsync);

    public async Task ModelsAsync(HttpContext context)
    {
        recorder.Record(context.Request, ReadOnlyMemory<byte>.Empty);
        var anthropic = context.Request.Headers.ContainsKey("anthropic-version");
        if (!Authorized(context.Request))
        {
            await SimulatorErrors.WriteAsync(context, anthropic, 401, "Incorrect API key provided.");
            return;
        }

        if (!FaultPlan.TryParse(context.Request.Headers[FaultPlan.HeaderName], out var faults, out var faultError))
        {
            await SimulatorErrors.WriteAsync(context, anthropic, 400, faultError!, "x-simulator-fault");
            return;
        }

        faults = scenarios.Resolve(faults, model: null);
        rateLimits.Apply(context, anthropic, PresentedKey(context.Request), 0);
        try
        {
            if (faults.Latency > TimeSpan.Zero)
            {
                await Task.Delay(faults.Latency, context.RequestAborted);
            }

            if (faults.Status is { } status)
            {
                await SimulatorErrors.WriteAsync(context, anthropic, status, $"Simulated upstream error (status {status}).");
                return;
            }

            await ModelsResponder.RespondAsync(context, anthropic);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away during the injected latency.
        }
    }

    private async Task RunAsync(HttpContext context, LlmDialect dialect, Func<SimRequest, Task> respond, bool azure = false)
    {
        var anthropic = dialect.IsAnthropic();
        try
        {
            var body = await ReadBodyAsync(context);
            if (body is null)
            {
                recorder.Record(context.Request, ReadOnlyMemory<byte>.Empty);
                await SimulatorErrors.WriteAsync(context, anthropic, 413, $"The request body exceeds {_options.MaxRequestBodyBytes} bytes.", code: "request_too_large");
                return;
            }

            recorder.Record(context.Request, body);
            if (!Authorized(context.Request))
            {
                await SimulatorErrors.WriteAsync(context, anthropic, 401,
                    anthropic ? "invalid x-api-key" : "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.");
                return;
            }

            if (!FaultPlan.TryParse(context.Request.Headers[FaultPlan.HeaderName], out var faults, out var faultError))
            {
                await SimulatorErrors.WriteAsync(context, anthropic, 400, faultError!, "x-simulator-fault", "invalid_simulator_fault");
                return;
            }

            var (peekedModel, peekedOutput) = Peek(body);
            if (string.IsNullOrEmpty(peekedModel) && azure)
            {
                peekedModel = context.Request.RouteValues["deployment"] as string;
            }

            if (peekedModel is not null && !Serves(dialect, peekedModel))
            {
                // As the real APIs: Anthropic does not serve OpenAI's models, OpenAI and Azure do not serve Claude. A
                // gateway must translate the request to the model's own API, never rely on this route answering it.
                await SimulatorErrors.WriteModelNotFoundAsync(context, anthropic, peekedModel);
                return;
            }

            faults = scenarios.Resolve(faults, peekedModel);
            rateLimits.Apply(context, anthropic, PresentedKey(context.Request), (body.Length / 4) + (peekedOutput ?? _options.DefaultOutputTokens));

            if (faults.ProviderHeaders)
            {
                SimulatorErrors.AddProviderHeaders(context.Response);
            }

            if (faults.Latency > TimeSpan.Zero)
            {
                await Task.Delay(faults.Latency, context.RequestAborted);
            }

            if (faults.Status is { } status)
            {
                LogFaultStatus(logger, status, context.Request.Path);
                if (faults.HtmlError)
                {
                    await SimulatorErrors.WriteHtmlAsync(context, status);
                    return;
                }

                await SimulatorErrors.WriteAsync(context, anthropic, status, $"Simulated upstream error (status {status}).");
                return;
            }

            if (!TryValidate(context, dialect, body, azure, out var json, out var model, out var error, out var param))
            {
                await SimulatorErrors.WriteAsync(context, anthropic, 400, error!, param);
                return;
            }

            var request = new SimRequest
            {
                Http = context,
                Dialect = dialect,
                Body = json!,
                Model = model!,
                Profile = ModelProfile.For(model!),
                Faults = faults,
                Seed = Fnv.Hash(body.AsSpan()),
                Options = _options,
                Time = time,
                Cache = cache,
            };
            await respond(request);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away, or a reset fault aborted the connection: nothing more to send.
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException && context.RequestAborted.IsCancellationRequested)
        {
            // Writing to a connection that is already gone.
        }
        catch (AnthropicPromptException ex) when (!context.Response.HasStarted)
        {
            await SimulatorErrors.WriteAsync(context, anthropic, 400, ex.Message);
        }
    }

    /// <summary>False when the route's provider does not serve <paramref name="model"/> (see <see cref="ModelProfile.IsOpenAIModel"/>).</summary>
    internal static bool Serves(LlmDialect dialect, string model) => dialect.IsAnthropic()
        ? !ModelProfile.IsOpenAIModel(model)
        : !ModelProfile.IsClaudeModel(model);

    /// <summary>The API key the caller presented (any of the providers' headers), or null.</summary>
    private static string? PresentedKey(HttpRequest request)
    {
        var headers = request.Headers;
        var authorization = headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization[7..].Trim();
        }

        var key = headers["x-api-key"].ToString();
        return key.Length > 0 ? key : headers["api-key"].ToString() is { Length: > 0 } azureKey ? azureKey : null;
    }

    /// <summary>
    /// One forward scan of the top-level properties for the model and the requested output cap (for fault scoping and
    /// the rate-limit estimate), without building a tree; malformed bodies yield nulls and are refused later.
    /// </summary>
    private static (string? Model, long? MaxOutput) Peek(byte[] body)
    {
        string? model = null;
        long? maxOutput = null;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return (null, null);
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isModel = reader.ValueTextEquals("model"u8);
                var isMax = reader.ValueTextEquals("max_tokens"u8) || reader.ValueTextEquals("max_completion_tokens"u8)
                    || reader.ValueTextEquals("max_output_tokens"u8);
                reader.Read();
                if (isModel && reader.TokenType == JsonTokenType.String)
                {
                    model = reader.GetString();
                }
                else if (isMax && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var max))
                {
                    maxOutput = Math.Max(0, max);
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            // Refused with the provider's parse error by TryValidate.
        }

        return (model, maxOutput);
    }

    private bool Authorized(HttpRequest request)
    {
        if (_apiKey is null)
        {
            return true;
        }

        var headers = request.Headers;
        var authorization = headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Matches(authorization.AsSpan(7).Trim()))
        {
            return true;
        }

        return Matches(headers["x-api-key"].ToString()) || Matches(headers["api-key"].ToString());
    }

    private bool Matches(ReadOnlySpan<char> presented)
    {
        if (presented.IsEmpty)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[256];
        var max = Encoding.UTF8.GetMaxByteCount(presented.Length);
        var bytes = max <= buffer.Length ? buffer : new byte[max];
        var written = Encoding.UTF8.GetBytes(presented, bytes);
        return CryptographicOperations.FixedTimeEquals(bytes[..written], _apiKey);
    }

    private async Task<byte[]?> ReadBodyAsync(HttpContext context)
    {
        var request = context.Request;
        var limit = _options.MaxRequestBodyBytes;
        if (request.ContentLength is { } length)
        {
            if (length > limit)
            {
                return null;
            }

            var exact = new byte[length];
            await request.Body.ReadExactlyAsync(exact, context.RequestAborted);
            return exact;
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        while (true)
        {
            var memory = buffer.GetMemory(4096);
            var read = await request.Body.ReadAsync(memory, context.RequestAborted);
            if (read == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                return null;
            }
        }
    }

    private static bool TryValidate(HttpContext context, LlmDialect dialect, byte[] body, bool azure,
        out JsonObject? json, out string? model, out string? error, out string? param)
    {
        json = null;
        model = null;
        param = null;
        JsonNode? node;
        try
        {
            node = body.Length == 0 ? null : JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException ex)
        {
            error = $"We could not parse the JSON body of your request: {ex.Message}";
            return false;
        }

        if (node is not JsonObject obj)
        {
            error = "The request body must be a JSON object.";
            return false;
        }

        json = obj;
        model = OpenAIPromptMeter.Str(obj["model"]);
        if (string.IsNullOrWhiteSpace(model) && azure)
        {
            model = context.Request.RouteValues["deployment"] as string;
        }

        if (string.IsNullOrWhiteSpace(model))
        {
            error = dialect.IsAnthropic() ? "model: Field required" : "you must provide a model parameter";
            param = "model";
            return false;
        }

        if (obj["stream"] is { } stream && stream.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            error = "'stream' must be a boolean.";
            param = "stream";
            return false;
        }

        switch (dialect)
        {
            case LlmDialect.OpenAIChat when obj["messages"] is not JsonArray { Count: > 0 }:
                error = "'messages' is required and must be a non-empty array.";
                param = "messages";
                return false;
            case LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens when obj["messages"] is not JsonArray:
                error = "messages: Field required";
                param = "messages";
                return false;
            case LlmDialect.AnthropicMessages when obj["max_tokens"] is not JsonValue mt || mt.GetValueKind() != JsonValueKind.Number:
                error = "max_tokens: Field required";
                param = "max_tokens";
                return false;
            case LlmDialect.OpenAIResponses when obj["input"] is not (JsonArray or JsonValue) && obj["previous_response_id"] is null:
                error = "Missing required parameter: 'input'.";
                param = "input";
                return false;
            case LlmDialect.OpenAIEmbeddings when !EmbeddingsResponder.IsValidInput(obj["input"]):
                error = "'input' is required and must be a non-empty string, array of strings or array of token arrays.";
                param = "input";
                return false;
        }

        error = null;
        return true;
    }

    [LoggerMessage(3001, LogLevel.Debug, "Simulator returning fault status {Status} for {Path}")]
    private static partial void LogFaultStatus(ILogger logger, int status, PathString path);
}

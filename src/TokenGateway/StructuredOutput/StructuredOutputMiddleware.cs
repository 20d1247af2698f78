using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;
using TokenGateway.Core.StructuredOutput;
using TokenGateway.Proxy;

namespace TokenGateway.StructuredOutput;

/// <summary>
/// Resolves the schema a request's answer must satisfy (the <c>x-tokengateway-schema</c> header, the request's own
/// schema, or the policy's), rejects malformed schemas with 400, puts the schema into the request in the provider's
/// native (strict) form or as an instruction, and in buffered streaming mode turns the upstream call non-streaming.
/// </summary>
internal sealed partial class StructuredOutputMiddleware(
    RequestDelegate next, ISchemaRegistry registry, ILogger<StructuredOutputMiddleware> logger)
{
    public const string SchemaHeader = "x-tokengateway-schema";

    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        if (exchange.IsTranslated)
        {
            // A translated request (issue #16) carries its own schema to the provider's native structured output; the
            // gateway's validation and repair calls speak the client's API and are not used for it (docs/translation.md).
            // A schema only the gateway would add (header, team policy) is refused rather than silently not applied.
            return RefuseGatewaySchemaAsync(context, exchange).Then(next, context);
        }

        return exchange.Dialect is LlmDialect.OpenAIChat or LlmDialect.OpenAIResponses or LlmDialect.AnthropicMessages
            ? PrepareAsync(context, exchange).Then(next, context)
            : next(context);
    }

    private static async ValueTask<bool> RefuseGatewaySchemaAsync(HttpContext context, LlmExchange exchange)
    {
        var policy = exchange.Policy?.StructuredOutput ?? StructuredOutputPolicy.Default;
        var header = context.Request.Headers[SchemaHeader].Count > 0;
        if (!policy.Enabled || (!header && policy.Schema is null))
        {
            return true;
        }

        await RejectAsync(context, exchange,
            $"The model '{exchange.Model!.Name}' is served through the other API, where the gateway cannot enforce {(header ? "the " + SchemaHeader + " schema" : "your team's policy schema")}. "
            + "Send the schema in the request (response_format json_schema, or output_config.format), which the provider enforces, or use a model of this API.",
            SchemaHeader);
        return false;
    }

    /// <summary>Applies the schema, if any; false when the request was rejected (the error is written).</summary>
    private async ValueTask<bool> PrepareAsync(HttpContext context, LlmExchange exchange)
    {
        var policy = exchange.Policy?.StructuredOutput ?? StructuredOutputPolicy.Default; // typed when the policy was resolved
        if (!policy.Enabled)
        {
            return true;
        }

        var request = exchange.Request!;
        SchemaTarget? target;
        var header = context.Request.Headers[SchemaHeader].ToString();
        if (header.Length > 0)
        {
            if (!SchemaName.TryParseReference(header, out var name, out var version))
            {
                await RejectAsync(context, exchange, $"{SchemaHeader} must be a registered schema name or name@version.", SchemaHeader);
                return false;
            }

            var stored = await LookupAsync(name, version, context.RequestAborted);
            if (stored is null)
            {
                await RejectAsync(context, exchange, $"The schema '{header}' is not registered on this gateway.", SchemaHeader);
                return false;
            }

            target = new SchemaTarget(stored.Name, stored.Schema, SchemaCarrier.ResponseFormat, Strict: true, SchemaSource.Header) { Version = stored.Version };
        }
        else
        {
            var outcome = SchemaDiscovery.Find(request, out target, out var error);
            if (outcome == SchemaDiscovery.Outcome.Malformed)
            {
                await RejectAsync(context, exchange, error!, null);
                return false;
            }

            if (target is null && policy.Schema is { } policyName)
            {
                var stored = await LookupAsync(policyName, policy.SchemaVersion, context.RequestAborted);
                if (stored is null)
                {
                    LogPolicySchemaMissing(logger, policyName, exchange.TeamId);
                }
                else
                {
                    target = new SchemaTarget(stored.Name, stored.Schema, SchemaCarrier.ResponseFormat, Strict: true, SchemaSource.Policy) { Version = stored.Version };
                }
            }
        }

        if (target is null)
        {
            return true;
        }

        if (!CompiledSchema.TryCompile(target.Schema, out _, out var schemaError))
        {
            await RejectAsync(context, exchange, $"The JSON schema '{target.Name}' is invalid: {schemaError}", null);
            return false;
        }

        var enforced = SchemaEnforcement.Apply(request, exchange.Model!, target);
        if (!CompiledSchema.TryCompile(enforced.ValidationSchema, out var compiled, out schemaError))
        {
            await RejectAsync(context, exchange, $"The JSON schema '{target.Name}' is invalid after conversion to strict mode: {schemaError}", null);
            return false;
        }

        if (policy.DeriveMaxTokens && SchemaOutputBound.TryEstimateMaxTokens(enforced.ValidationSchema, out var ceiling))
        {
            SchemaEnforcement.ApplyMaxTokensCeiling(request, ceiling);
        }

        var replay = false;
        var includeUsage = false;
        if (request.Stream && policy.Streaming == SchemaStreamingMode.Buffer)
        {
            includeUsage = request.Body["stream_options"]?["include_usage"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out var b) && b;
            request.Body.Remove("stream");
            request.Body.Remove("stream_options");
            request.MarkModified();
            replay = true;
        }

        context.Features.Set(new StructuredOutputFeature(enforced, compiled!, policy) { ReplayAsSse = replay, ClientIncludeUsage = includeUsage });
        context.Response.Headers["x-tokengateway-schema"] = target.Version is { } ver ? $"{target.Name}@{ver}" : target.Name;
        return true;
    }

    private async Task<StoredSchema?> LookupAsync(string name, int? version, CancellationToken cancellationToken) =>
        version is { } v ? await registry.GetVersionAsync(name, v, cancellationToken) : await registry.GetLatestAsync(name, cancellationToken);

    private static Task RejectAsync(HttpContext context, LlmExchange exchange, string message, string? param) =>
        exchange.FailAsync(context, GatewayError.InvalidRequest, message, param);

    [LoggerMessage(2500, LogLevel.Warning, "Policy schema '{Schema}' for team {TeamId} is not registered; the request is forwarded without a schema")]
    private static partial void LogPolicySchemaMissing(ILogger logger, string schema, string? teamId);
}

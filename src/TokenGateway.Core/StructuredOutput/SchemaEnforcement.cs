using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>How a schema was put into the forwarded request.</summary>
public enum SchemaDelivery
{
    /// <summary>The provider enforces it natively (strict form where possible).</summary>
    Native,
    /// <summary>A compact instruction in the system prompt (model without native support).</summary>
    Instruction,
}

/// <summary>What <see cref="SchemaEnforcement.Apply"/> did: the schema answers are validated against and how it was sent.</summary>
public sealed record EnforcedSchema(SchemaTarget Target, JsonObject ValidationSchema, SchemaDelivery Delivery, bool Strict);

/// <summary>
/// Puts a schema into the forwarded request: the provider's native form (converted to OpenAI's strict subset where
/// the client asked for strict mode or the schema came from the registry), or a compact instruction for models
/// without native support (<see cref="ModelCard.SupportsStructuredOutput"/> false).
/// </summary>
public static class SchemaEnforcement
{
    /// <summary>Applies <paramref name="target"/> to <paramref name="request"/>; marks the body modified only when it changed.</summary>
    public static EnforcedSchema Apply(LlmRequest request, ModelCard card, SchemaTarget target)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(card);
        ArgumentNullException.ThrowIfNull(target);
        var body = request.Body;
        var openAI = request.Dialect is LlmDialect.OpenAIChat or LlmDialect.OpenAIResponses;

        if (target.Source != SchemaSource.Request)
        {
            RemoveResponseFormat(request);
            if (!card.SupportsStructuredOutput)
            {
                SchemaInstruction.Apply(request, target.Schema);
                return new EnforcedSchema(target, target.Schema, SchemaDelivery.Instruction, Strict: false);
            }

            var strict = StrictSchema.TryConvert(target.Schema, out var converted, out _);
            var sent = strict && openAI ? converted : target.Schema;
            InsertResponseFormat(request, target.Name, sent, strict);
            return new EnforcedSchema(target, sent, SchemaDelivery.Native, strict);
        }

        if (target.Carrier == SchemaCarrier.ResponseFormat && !card.SupportsStructuredOutput)
        {
            RemoveResponseFormat(request);
            SchemaInstruction.Apply(request, target.Schema);
            return new EnforcedSchema(target, target.Schema, SchemaDelivery.Instruction, Strict: false);
        }

        if (openAI && target.Strict && !StrictSchema.IsStrict(target.Schema))
        {
            // The client asked for strict mode with a schema outside the subset: convert rather than let the
            // provider answer 400; if it cannot be expressed, fall back to strict:false and rely on validation.
            var parent = target.Schema.Parent as JsonObject;
            if (parent is not null)
            {
                if (StrictSchema.TryConvert(target.Schema, out var converted, out _))
                {
                    var key = parent.ContainsKey("parameters") ? "parameters" : "schema";
                    parent[key] = converted;
                    request.MarkModified();
                    return new EnforcedSchema(target, converted, SchemaDelivery.Native, Strict: true);
                }

                parent["strict"] = false;
                request.MarkModified();
                return new EnforcedSchema(target, target.Schema, SchemaDelivery.Native, Strict: false);
            }
        }

        return new EnforcedSchema(target, target.Schema, SchemaDelivery.Native, target.Strict);
    }

    /// <summary>
    /// Lowers the output cap to <paramref name="ceiling"/> when the request has none or a larger one; true when changed.
    /// </summary>
    public static bool ApplyMaxTokensCeiling(LlmRequest request, int ceiling)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Budgets.MaxTokensRule.Lower(request.MaxTokens, ceiling) is not { } value)
        {
            return false;
        }

        request.SetMaxTokens(value);
        return true;
    }

    private static void RemoveResponseFormat(LlmRequest request)
    {
        var body = request.Body;
        var removed = request.Dialect switch
        {
            LlmDialect.OpenAIChat => body.Remove("response_format"),
            LlmDialect.OpenAIResponses => body["text"] is JsonObject text && text.Remove("format"),
            LlmDialect.AnthropicMessages => body.Remove("output_format") | (body["output_config"] is JsonObject config && config.Remove("format")),
            _ => false,
        };
        if (removed)
        {
            request.MarkModified();
        }
    }

    private static void InsertResponseFormat(LlmRequest request, string name, JsonObject schema, bool strict)
    {
        var body = request.Body;
        var schemaName = SchemaName.IsValid(name) ? name.Replace('.', '_') : "response";
        switch (request.Dialect)
        {
            case LlmDialect.OpenAIChat:
                body["response_format"] = new JsonObject
                {
                    ["type"] = "json_schema",
                    ["json_schema"] = new JsonObject { ["name"] = schemaName, ["strict"] = strict, ["schema"] = schema.DeepClone() },
                };
                break;
            case LlmDialect.OpenAIResponses:
                if (body["text"] is not JsonObject text)
                {
                    text = [];
                    body["text"] = text;
                }

                text["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = schemaName, ["strict"] = strict, ["schema"] = schema.DeepClone() };
                break;
            case LlmDialect.AnthropicMessages:
                body["output_format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = schema.DeepClone() };
                break;
            default:
                return;
        }

        request.MarkModified();
    }
}

using System.Text.Json.Nodes;
using TokenGateway.Simulator.Faults;

namespace TokenGateway.Simulator.Generation;

/// <summary>What an answer consists of: plain text, or one forced tool call.</summary>
internal enum AnswerKind
{
    Text,
    ToolCall,
}

/// <summary>The dialect-neutral description of what the model was asked for.</summary>
internal sealed record AnswerRequest
{
    /// <summary>An exact tiktoken encoding used to build and count the output.</summary>
    public required string OutputEncoding { get; init; }
    public required ulong Seed { get; init; }
    public required FaultPlan Faults { get; init; }
    public required int DefaultOutputTokens { get; init; }
    public int? MaxTokens { get; init; }
    public int ReasoningTokens { get; init; }
    /// <summary>A JSON schema the answer must satisfy.</summary>
    public JsonNode? Schema { get; init; }
    /// <summary>JSON mode: any JSON object.</summary>
    public bool JsonObject { get; init; }
    /// <summary>A tool the request forces; its parameters schema shapes the arguments.</summary>
    public string? ForcedTool { get; init; }
    public JsonNode? ForcedToolSchema { get; init; }
    /// <summary>True when the conversation already contains an assistant turn (how a repair call looks).</summary>
    public bool HasAssistantTurn { get; init; }
}

/// <summary>A planned answer: its visible content token by token, its reasoning tokens and why it stopped.</summary>
internal sealed class Answer
{
    public required AnswerKind Kind { get; init; }
    public required TokenizedText Content { get; init; }
    public int ReasoningTokens { get; init; }
    public bool Truncated { get; init; }
    public string? ToolName { get; init; }
    public string ToolCallId { get; init; } = string.Empty;

    /// <summary>Visible output tokens.</summary>
    public int VisibleTokens => Content.TokenCount;

    /// <summary>Billed output tokens: visible plus reasoning.</summary>
    public int OutputTokens => Content.TokenCount + ReasoningTokens;

    /// <summary>Plans the answer for <paramref name="request"/>.</summary>
    public static Answer Plan(AnswerRequest request)
    {
        var reasoning = request.MaxTokens is { } cap ? Math.Min(request.ReasoningTokens, cap) : request.ReasoningTokens;
        var budget = request.MaxTokens is { } max ? Math.Max(0, max - reasoning) : int.MaxValue;
        var encoding = request.OutputEncoding;

        if (request.ForcedTool is not null)
        {
            var args = SchemaInstanceGenerator.Serialize(SchemaInstanceGenerator.Generate(request.ForcedToolSchema, request.Seed));
            var full = TokenizedText.FromText(encoding, args);
            return new Answer
            {
                Kind = AnswerKind.ToolCall,
                Content = full.Truncate(encoding, budget),
                ReasoningTokens = reasoning,
                Truncated = full.TokenCount > budget,
                ToolName = request.ForcedTool,
                ToolCallId = Ids.New("call_", 24),
            };
        }

        if (request.Schema is not null || request.JsonObject)
        {
            var full = TokenizedText.FromText(encoding, StructuredText(request));
            return new Answer
            {
                Kind = AnswerKind.Text,
                Content = full.Truncate(encoding, budget),
                ReasoningTokens = reasoning,
                Truncated = full.TokenCount > budget,
            };
        }

        var wanted = request.Faults.OutputTokens ?? request.DefaultOutputTokens;
        var tokens = Math.Min(wanted, budget);
        return new Answer
        {
            Kind = AnswerKind.Text,
            Content = TextComposer.Compose(encoding, tokens, request.Seed),
            ReasoningTokens = reasoning,
            Truncated = wanted > budget,
        };
    }

    private static string StructuredText(AnswerRequest request)
    {
        JsonNode? instance;
        if (request.Schema is not null)
        {
            instance = SchemaInstanceGenerator.Generate(request.Schema, request.Seed);
            var breakIt = request.Faults.InvalidJson == InvalidJsonMode.Always ||
                (request.Faults.InvalidJson == InvalidJsonMode.FirstAnswer && !request.HasAssistantTurn);
            if (breakIt)
            {
                instance = SchemaInstanceGenerator.Break(request.Schema, instance);
            }
        }
        else
        {
            var sentence = TextComposer.Compose(request.OutputEncoding, Math.Clamp(request.Faults.OutputTokens ?? 12, 1, 4096), request.Seed).Text;
            instance = new JsonObject { ["answer"] = sentence };
        }

        var json = SchemaInstanceGenerator.Serialize(instance);
        return request.Faults.FencedJson
            ? $"Here is the JSON you asked for:\n\n```json\n{json}\n```\n\nLet me know if you need anything else."
            : json;
    }
}

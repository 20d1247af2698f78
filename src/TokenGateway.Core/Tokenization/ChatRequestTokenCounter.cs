using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using System.Runtime.CompilerServices;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tokenization;

/// <summary>
/// Counts a request's prompt tokens the way OpenAI and Anthropic bill them, straight from the parsed JSON tree.
/// </summary>
/// <remarks>
/// <para>OpenAI chat follows the rendering published in the OpenAI cookbook ("How to count tokens with tiktoken"):
/// 3 tokens per message, the tokens of every rendered value (role, content, name), 1 more per <c>name</c>, 3 to
/// prime the reply; tool definitions use the cookbook's function-rendering constants (7 per function on o200k,
/// 10 on cl100k, 3 per property block and key, −3 + 3 per enum item, 12 at the end). Tool calls, tool results
/// and structured-output schemas are approximations documented in <c>docs/metering.md</c>.</para>
/// <para>Anthropic has no public tokenizer: text is counted with o200k_base and scaled once per request by
/// <see cref="TiktokenTokenizerRegistry.ClaudeCalibration"/> (scaling each fragment would compound rounding), and
/// structural overhead (per message, tool-use system prompt, images) is added unscaled.</para>
/// <para>The same walk splits the count into a <see cref="TokenAnatomy"/> (system, tools, history, tool results,
/// latest user turn) whose parts sum exactly to the count: each message's framing goes to the part its message
/// belongs to, request-level framing (reply priming, Anthropic's request overhead) and structured-output schemas to
/// the system part, Anthropic's tool-use system prompt to the tools part. With a calibrated estimate the scaled text
/// is apportioned to the parts by largest remainder, so the rounding of the whole count is kept.</para>
/// </remarks>
public sealed class ChatRequestTokenCounter : IRequestTokenCounter
{
    /// <summary>OpenAI image with <c>detail: low</c> (fixed by OpenAI).</summary>
    public const int OpenAIImageLowDetailTokens = 85;

    /// <summary>OpenAI image with <c>detail: high/auto</c>, dimensions unknown: a 1024×1024 image (85 + 4 tiles × 170).</summary>
    public const int OpenAIImageHighDetailTokens = 765;

    /// <summary>Anthropic image, dimensions unknown: the largest unresized image (~1.15 megapixels ÷ 750).</summary>
    public const int AnthropicImageTokens = 1_600;

    /// <summary>Anthropic PDF/URL document, page count unknown: two pages at the upper end of Anthropic's 1,500–3,000 per page.</summary>
    public const int AnthropicDocumentTokens = 3_000;

    /// <summary>Audio or file parts whose size cannot be known before the call.</summary>
    public const int OpaqueAttachmentTokens = 1_000;

    private const int OpenAITokensPerMessage = 3;
    private const int OpenAITokensPerName = 1;
    private const int OpenAIReplyPriming = 3;
    private const int OpenAITokensPerToolCall = 3;
    private const int AnthropicRequestOverhead = 4;
    private const int AnthropicTokensPerMessage = 3;
    private const int AnthropicTokensPerBlock = 3;

    private readonly ITokenizerRegistry _tokenizers;

    /// <summary>Creates a counter over the given tokenizers.</summary>
    public ChatRequestTokenCounter(ITokenizerRegistry tokenizers)
    {
        ArgumentNullException.ThrowIfNull(tokenizers);
        _tokenizers = tokenizers;
    }

    /// <inheritdoc />
    public int CountInputTokens(LlmRequest request, ModelCard model) => CountInputTokens(request, model, out _);

    /// <inheritdoc />
    public int CountInputTokens(LlmRequest request, ModelCard model, out TokenAnatomy anatomy)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(model);
        if (request.Dialect == LlmDialect.OpenAIChat && request.TryGetOriginalRoot(out var root))
        {
            var tally = new Tally(_tokenizers.Get(model.Tokenizer));
            if (TryCountPlainOpenAIChat(ref tally, root))
            {
                var estimate = TiktokenTokenizerRegistry.IsEstimate(model.Tokenizer);
                anatomy = tally.Anatomy(estimate);
                return tally.Total(estimate);
            }
        }

        return CountInputTokens(request.Dialect, request.Body, model, out anatomy);
    }

    /// <summary>
    /// Counts a plain chat request (messages whose role, content, name and refusal are scalars; no tools, functions,
    /// schema, content parts or tool calls) straight from the parsed document, exactly as the tree walk below counts
    /// it but without materializing a node per message. False for any other shape: the tree walk counts those.
    /// </summary>
    internal static bool TryCountPlainOpenAIChat(ref Tally tally, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        JsonElement messages = default;
        var seenMessages = false;
        foreach (var property in root.EnumerateObject())
        {
            if (property.NameEquals("tools"u8) || property.NameEquals("functions"u8) || property.NameEquals("response_format"u8))
            {
                return false;
            }

            if (property.NameEquals("messages"u8))
            {
                if (seenMessages)
                {
                    return false; // duplicate keys: the tree decides what they mean
                }

                messages = property.Value;
                seenMessages = true;
            }
        }

        if (messages.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
            {
                continue; // the tree walk skips non-object messages too
            }

            tally.BeginMessage();
            tally.Fixed += OpenAITokensPerMessage;
            var seen = 0;
            var part = AnatomyPart.History;
            foreach (var property in message.EnumerateObject())
            {
                var value = property.Value;
                var bit = property.NameEquals("role"u8) ? 1 : property.NameEquals("content"u8) ? 2 : property.NameEquals("name"u8) ? 4
                    : property.NameEquals("refusal"u8) ? 8 : property.NameEquals("tool_calls"u8) ? 16 : property.NameEquals("function_call"u8) ? 32 : 0;
                if (bit == 0)
                {
                    continue; // tool_call_id, audio ids and unknown keys are not rendered into the prompt
                }

                if ((seen & bit) != 0 || value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                {
                    return false; // a duplicate key, or structure (parts, tool calls): the tree walk counts it
                }

                seen |= bit;
                switch (bit)
                {
                    case 1:
                        tally.Role(value);
                        part = PartOfRole(value);
                        break;
                    case 2:
                    case 8:
                        tally.Scalar(value);
                        break;
                    case 4:
                        tally.Scalar(value);
                        tally.Fixed += OpenAITokensPerName;
                        break;
                    default:
                        break; // scalar tool_calls / function_call: not rendered (as in the tree walk)
                }
            }

            tally.EndMessage(part);
        }

        tally.Part = AnatomyPart.System;
        tally.Fixed += OpenAIReplyPriming;
        return true;
    }

    /// <summary>Pre-flight input token count of a parsed <paramref name="body"/> sent to <paramref name="dialect"/>.</summary>
    public int CountInputTokens(LlmDialect dialect, JsonObject body, ModelCard model) => CountInputTokens(dialect, body, model, out _);

    /// <summary>
    /// Pre-flight input token count of a parsed <paramref name="body"/> sent to <paramref name="dialect"/>, and its split
    /// by part of the prompt (<paramref name="anatomy"/> sums to the count).
    /// </summary>
    public int CountInputTokens(LlmDialect dialect, JsonObject body, ModelCard model, out TokenAnatomy anatomy)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(model);

        var tally = new Tally(_tokenizers.Get(model.Tokenizer));
        switch (dialect)
        {
            case LlmDialect.OpenAIChat:
                CountOpenAIChat(ref tally, body, IsCl100k(model.Tokenizer));
                break;
            case LlmDialect.OpenAIResponses:
                CountOpenAIResponses(ref tally, body, IsCl100k(model.Tokenizer));
                break;
            case LlmDialect.OpenAIEmbeddings:
                tally.Part = AnatomyPart.LatestUser; // the input to embed is all there is
                CountEmbeddings(ref tally, body["input"]);
                break;
            case LlmDialect.AnthropicMessages:
            case LlmDialect.AnthropicCountTokens:
                CountAnthropic(ref tally, body, model.Name);
                break;
            default:
                tally.Part = AnatomyPart.LatestUser;
                tally.Json(body);
                break;
        }

        var estimate = TiktokenTokenizerRegistry.IsEstimate(model.Tokenizer);
        anatomy = tally.Anatomy(estimate);
        return tally.Total(estimate);
    }

    /// <summary>The anatomy part of a chat message by its role (user messages are the latest turn until a later one).</summary>
    private static AnatomyPart PartOfRole(JsonElement role) =>
        role.ValueKind != JsonValueKind.String ? AnatomyPart.History
        : role.ValueEquals("user"u8) ? AnatomyPart.LatestUser
        : role.ValueEquals("system"u8) || role.ValueEquals("developer"u8) ? AnatomyPart.System
        : role.ValueEquals("tool"u8) || role.ValueEquals("function"u8) ? AnatomyPart.ToolResults
        : AnatomyPart.History;

    /// <inheritdoc cref="PartOfRole(JsonElement)"/>
    private static AnatomyPart PartOfRole(JsonNode? role)
    {
        if (role is not JsonValue value)
        {
            return AnatomyPart.History;
        }

        if (value.TryGetValue<JsonElement>(out var element))
        {
            return PartOfRole(element); // a parsed value: compared in place, no string materialized
        }

        return JsonTokenText.GetString(value) switch
        {
            "user" => AnatomyPart.LatestUser,
            "system" or "developer" => AnatomyPart.System,
            "tool" or "function" => AnatomyPart.ToolResults,
            _ => AnatomyPart.History,
        };
    }

    private static bool IsCl100k(string encoding) => encoding.StartsWith("cl100k", StringComparison.OrdinalIgnoreCase);

    // ---------------------------------------------------------------- OpenAI chat

    private static void CountOpenAIChat(ref Tally tally, JsonObject body, bool cl100k)
    {
        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                if (message is JsonObject m)
                {
                    CountOpenAIMessage(ref tally, m);
                }
            }
        }

        tally.Part = AnatomyPart.System;
        tally.Fixed += OpenAIReplyPriming;
        if (body["response_format"] is JsonObject format && format["json_schema"] is JsonObject schema)
        {
            CountSchema(ref tally, schema);
        }

        tally.Part = AnatomyPart.Tools;
        CountOpenAITools(ref tally, body["tools"], cl100k);
        CountOpenAITools(ref tally, body["functions"], cl100k);
    }

    private static void CountOpenAIMessage(ref Tally tally, JsonObject message)
    {
        tally.BeginMessage();
        tally.Fixed += OpenAITokensPerMessage;
        var part = AnatomyPart.History;
        foreach (var (key, value) in message)
        {
            switch (key)
            {
                case "role":
                    tally.Role(value);
                    part = PartOfRole(value);
                    break;
                case "content":
                    CountOpenAIContent(ref tally, value);
                    break;
                case "name":
                    tally.Value(value);
                    tally.Fixed += OpenAITokensPerName;
                    break;
                case "refusal":
                    tally.Value(value);
                    break;
                case "tool_calls" when value is JsonArray calls:
                    foreach (var call in calls)
                    {
                        CountFunctionCall(ref tally, call?["function"] ?? call);
                    }

                    break;
                case "function_call":
                    CountFunctionCall(ref tally, value);
                    break;
                default:
                    // tool_call_id, audio ids and unknown keys are not rendered into the prompt.
                    break;
            }
        }

        tally.EndMessage(part);
    }

    private static void CountFunctionCall(ref Tally tally, JsonNode? function)
    {
        if (function is not JsonObject f)
        {
            return;
        }

        tally.Fixed += OpenAITokensPerToolCall;
        tally.Value(f["name"]);
        tally.Value(f["arguments"]);
    }

    private static void CountOpenAIContent(ref Tally tally, JsonNode? content)
    {
        if (content is not JsonArray parts)
        {
            tally.Value(content);
            return;
        }

        foreach (var part in parts)
        {
            if (part is not JsonObject p)
            {
                tally.Value(part);
                continue;
            }

            var type = JsonTokenText.GetString(p["type"]);
            switch (type)
            {
                case "text" or "input_text" or "output_text":
                    tally.Value(p["text"]);
                    break;
                case "refusal":
                    tally.Value(p["refusal"]);
                    break;
                case "image_url" or "input_image":
                    var detail = JsonTokenText.GetString(p["detail"] ?? p["image_url"]?["detail"]);
                    tally.Fixed += detail == "low" ? OpenAIImageLowDetailTokens : OpenAIImageHighDetailTokens;
                    break;
                default:
                    // input_audio, file, input_file: size unknown before the call.
                    tally.Fixed += OpaqueAttachmentTokens;
                    break;
            }
        }
    }

    private static void CountOpenAITools(ref Tally tally, JsonNode? toolsNode, bool cl100k)
    {
        if (toolsNode is not JsonArray tools || tools.Count == 0)
        {
            return;
        }

        var funcInit = cl100k ? 10 : 7;
        const int PropInit = 3, PropKey = 3, EnumInit = -3, EnumItem = 3, FuncEnd = 12;
        var any = false;
        foreach (var tool in tools)
        {
            if (tool is not JsonObject t)
            {
                continue;
            }

            // Chat nests the definition under "function"; Responses and legacy "functions" are flat.
            var function = t["function"] as JsonObject ?? t;
            var name = JsonTokenText.GetString(function["name"]);
            if (name is null)
            {
                tally.Json(t); // built-in tools (web_search, file_search, …): count their JSON as an approximation.
                continue;
            }

            any = true;
            tally.Fixed += funcInit;
            tally.Text(Line(name, TrimPeriod(JsonTokenText.GetString(function["description"]))));
            if (function["parameters"]?["properties"] is JsonObject properties && properties.Count > 0)
            {
                tally.Fixed += PropInit;
                foreach (var (key, schemaNode) in properties)
                {
                    tally.Fixed += PropKey;
                    var schema = schemaNode as JsonObject;
                    if (schema?["enum"] is JsonArray items)
                    {
                        tally.Fixed += EnumInit;
                        foreach (var item in items)
                        {
                            tally.Fixed += EnumItem;
                            tally.Value(item);
                        }
                    }

                    tally.Text(Line(key, TypeOf(schema), TrimPeriod(JsonTokenText.GetString(schema?["description"]))));
                    if (schema?["properties"] is JsonObject || schema?["items"]?["properties"] is JsonObject)
                    {
                        // Nested objects are rendered inline; approximate them by their JSON text.
                        tally.Json(schema["properties"] ?? schema["items"]);
                    }
                }
            }
        }

        if (any)
        {
            tally.Fixed += FuncEnd;
        }
    }

    private static string TypeOf(JsonObject? schema) => schema?["type"] switch
    {
        JsonValue v when JsonTokenText.GetString(v) is { } s => s,
        JsonArray a => string.Join(" | ", a.Select(JsonTokenText.GetString).Where(s => s is not null)),
        _ => "any",
    };

    private static string TrimPeriod(string? text) =>
        text is null ? string.Empty : text.EndsWith('.') ? text[..^1] : text;

    private static string Line(string a, string b) => string.Concat(a, ":", b);

    private static string Line(string a, string b, string c) => string.Concat(a, ":", b, ":", c);

    private static void CountSchema(ref Tally tally, JsonObject jsonSchema)
    {
        // Structured outputs render the schema into the prompt; its compact JSON is a close approximation.
        tally.Value(jsonSchema["name"]);
        tally.Json(jsonSchema["schema"]);
    }

    // ---------------------------------------------------------------- OpenAI Responses

    private static void CountOpenAIResponses(ref Tally tally, JsonObject body, bool cl100k)
    {
        if (body["instructions"] is JsonValue instructions)
        {
            tally.Part = AnatomyPart.System;
            tally.Fixed += OpenAITokensPerMessage + 1; // rendered as a developer message; the role is one token
            tally.Value(instructions);
        }

        switch (body["input"])
        {
            case JsonValue text:
                tally.BeginMessage();
                tally.Fixed += OpenAITokensPerMessage + 1; // a single user message
                tally.Value(text);
                tally.EndMessage(AnatomyPart.LatestUser);
                break;
            case JsonArray items:
                foreach (var item in items)
                {
                    if (item is JsonObject i)
                    {
                        CountResponsesItem(ref tally, i);
                    }
                }

                break;
            default:
                break;
        }

        tally.Part = AnatomyPart.System;
        tally.Fixed += OpenAIReplyPriming;
        if (body["text"]?["format"] is JsonObject format && JsonTokenText.StringEquals(format["type"], "json_schema"))
        {
            CountSchema(ref tally, format);
        }

        tally.Part = AnatomyPart.Tools;
        CountOpenAITools(ref tally, body["tools"], cl100k);
    }

    private static void CountResponsesItem(ref Tally tally, JsonObject item)
    {
        var type = JsonTokenText.GetString(item["type"]);
        switch (type)
        {
            case null or "message":
                CountOpenAIMessage(ref tally, item);
                break;
            case "function_call" or "custom_tool_call":
                tally.Part = AnatomyPart.History;
                CountFunctionCall(ref tally, item);
                tally.Value(item["input"]);
                break;
            case "function_call_output" or "custom_tool_call_output":
                tally.Part = AnatomyPart.ToolResults;
                tally.Fixed += OpenAITokensPerMessage;
                tally.Value(item["output"]);
                break;
            case "reasoning":
                tally.Part = AnatomyPart.History;
                if (item["summary"] is JsonArray summary)
                {
                    foreach (var part in summary)
                    {
                        tally.Value(part?["text"]);
                    }
                }

                break;
            case "item_reference":
                break;
            default:
                // Built-in tool calls (web_search_call, …) are history; their outputs (computer_call_output, …) are results.
                tally.Part = type.EndsWith("_output", StringComparison.Ordinal) ? AnatomyPart.ToolResults : AnatomyPart.History;
                tally.Fixed += OpenAITokensPerMessage;
                tally.Json(item);
                break;
        }
    }

    // ---------------------------------------------------------------- embeddings

    private static void CountEmbeddings(ref Tally tally, JsonNode? input)
    {
        switch (input)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                tally.Value(v);
                break;
            case JsonValue:
                tally.Fixed += 1; // a single token id
                break;
            case JsonArray array:
                foreach (var element in array)
                {
                    CountEmbeddings(ref tally, element);
                }

                break;
            default:
                break;
        }
    }

    // ---------------------------------------------------------------- Anthropic

    private static void CountAnthropic(ref Tally tally, JsonObject body, string model)
    {
        tally.Part = AnatomyPart.System;
        tally.Fixed += AnthropicRequestOverhead;
        switch (body["system"])
        {
            case JsonArray blocks:
                CountAnthropicBlocks(ref tally, blocks);
                break;
            case { } system:
                tally.Value(system);
                break;
            default:
                break;
        }

        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                tally.BeginMessage();
                tally.Fixed += AnthropicTokensPerMessage;
                var content = message?["content"];
                switch (content)
                {
                    case JsonArray blocks:
                        CountAnthropicBlocks(ref tally, blocks);
                        break;
                    case { } text:
                        tally.Value(text);
                        break;
                    default:
                        break;
                }

                tally.EndMessage(AnthropicPartOf(message?["role"], content));
            }
        }

        tally.Part = AnatomyPart.Tools;
        if (body["tools"] is JsonArray tools && tools.Count > 0)
        {
            tally.Fixed += AnthropicToolSystemPrompt(model, JsonTokenText.GetString(body["tool_choice"]?["type"]));
            foreach (var tool in tools)
            {
                if (tool is not JsonObject t)
                {
                    continue;
                }

                tally.Value(t["name"]);
                tally.Value(t["description"]);
                if (t["input_schema"] is { } schema)
                {
                    tally.Json(schema);
                }
                else
                {
                    tally.Json(t); // server tools (web_search_20250305, bash_…): count their definition
                }
            }
        }
    }

    private static void CountAnthropicBlocks(ref Tally tally, JsonArray blocks)
    {
        foreach (var block in blocks)
        {
            if (block is not JsonObject b)
            {
                tally.Value(block);
                continue;
            }

            switch (JsonTokenText.GetString(b["type"]))
            {
                case "text":
                    tally.Value(b["text"]);
                    break;
                case "image":
                    tally.Fixed += AnthropicImageTokens;
                    break;
                case "document":
                    CountAnthropicDocument(ref tally, b);
                    break;
                case "tool_use" or "server_tool_use":
                    tally.Fixed += AnthropicTokensPerBlock;
                    tally.Value(b["name"]);
                    tally.Json(b["input"]);
                    break;
                case "tool_result":
                    var part = tally.Part;
                    tally.Part = AnatomyPart.ToolResults;
                    tally.Fixed += AnthropicTokensPerBlock;
                    if (b["content"] is JsonArray inner)
                    {
                        CountAnthropicBlocks(ref tally, inner);
                    }
                    else
                    {
                        tally.Value(b["content"]);
                    }

                    tally.Part = part;
                    break;
                case "thinking" or "redacted_thinking":
                    // Thinking blocks of earlier turns are stripped by the API and not billed as input.
                    break;
                case "search_result":
                    tally.Value(b["title"]);
                    if (b["content"] is JsonArray results)
                    {
                        CountAnthropicBlocks(ref tally, results);
                    }

                    break;
                default:
                    tally.Fixed += AnthropicTokensPerBlock;
                    tally.Json(b);
                    break;
            }
        }
    }

    /// <summary>
    /// The part of an Anthropic message: a user message with anything besides <c>tool_result</c> blocks is a user turn;
    /// one made only of tool results is a tool-result message (its framing counts with the results).
    /// </summary>
    private static AnatomyPart AnthropicPartOf(JsonNode? role, JsonNode? content)
    {
        if (!JsonTokenText.StringEquals(role, "user"))
        {
            return AnatomyPart.History;
        }

        if (content is not JsonArray blocks || blocks.Count == 0)
        {
            return AnatomyPart.LatestUser;
        }

        foreach (var block in blocks)
        {
            if (block is not JsonObject b || !JsonTokenText.StringEquals(b["type"], "tool_result"))
            {
                return AnatomyPart.LatestUser;
            }
        }

        return AnatomyPart.ToolResults;
    }

    private static void CountAnthropicDocument(ref Tally tally, JsonObject document)
    {
        tally.Value(document["title"]);
        tally.Value(document["context"]);
        var source = document["source"] as JsonObject;
        switch (JsonTokenText.GetString(source?["type"]))
        {
            case "text":
                tally.Value(source!["data"]); // the switch matched, so source is non-null
                break;
            case "content" when source!["content"] is JsonArray blocks:
                CountAnthropicBlocks(ref tally, blocks);
                break;
            case "content":
                tally.Value(source["content"]);
                break;
            default:
                tally.Fixed += AnthropicDocumentTokens;
                break;
        }
    }

    /// <summary>Tokens of the tool-use system prompt Anthropic adds when tools are present (per its pricing docs).</summary>
    internal static int AnthropicToolSystemPrompt(string model, string? toolChoice)
    {
        var forced = toolChoice is "any" or "tool";
        if (model.Contains("3-5-haiku", StringComparison.OrdinalIgnoreCase) || model.Contains("3-haiku", StringComparison.OrdinalIgnoreCase))
        {
            return forced ? 340 : 264;
        }

        if (model.Contains("3-opus", StringComparison.OrdinalIgnoreCase))
        {
            return forced ? 281 : 530;
        }

        return forced ? 313 : 346;
    }

    /// <summary>The slots of a <see cref="Tally"/>: the five anatomy parts and the message being counted.</summary>
    internal enum AnatomyPart
    {
        System,
        Tools,
        History,
        ToolResults,
        LatestUser,

        /// <summary>The current message, until <see cref="Tally.EndMessage"/> knows which part it belongs to.</summary>
        Message,
    }

    /// <summary>Per-slot counts (one int per <see cref="AnatomyPart"/>), inline in the tally.</summary>
    [InlineArray(6)]
    internal struct PartCounts
    {
        private int _element;
    }

    /// <summary>
    /// Running count: tokenizer-counted text (scaled for estimates) plus fixed structural overhead, each also added to
    /// the slot of the current <see cref="Part"/>.
    /// </summary>
    internal ref struct Tally(Tokenizer tokenizer)
    {
        private readonly Tokenizer _tokenizer = tokenizer;
        private int _text;
        private int _fixed;
        private PartCounts _partText;
        private PartCounts _partFixed;

        /// <summary>The slot that counts go to now.</summary>
        public AnatomyPart Part;

        /// <summary>Fixed structural overhead; an increment is also added to the current <see cref="Part"/>.</summary>
        public int Fixed
        {
            readonly get => _fixed;
            set
            {
                _partFixed[(int)Part] += value - _fixed;
                _fixed = value;
            }
        }

        public void Value(JsonNode? node) => AddText(JsonTokenText.Count(_tokenizer, node));

        public void Role(JsonNode? node) => AddText(JsonTokenText.CountRole(_tokenizer, node));

        public void Role(JsonElement element) => AddText(JsonTokenText.CountRole(_tokenizer, element));

        public void Scalar(JsonElement element) => AddText(JsonTokenText.CountScalar(_tokenizer, element));

        public void Json(JsonNode? node) => AddText(JsonTokenText.Count(_tokenizer, node));

        public void Text(string text) => AddText(JsonTokenText.CountText(_tokenizer, text));

        /// <summary>Starts a message whose part is known only at its end (its role may come after its content).</summary>
        public void BeginMessage() => Part = AnatomyPart.Message;

        /// <summary>
        /// Moves the current message's counts to <paramref name="part"/>. A new user turn makes the previous latest
        /// user turn history; tool results counted inside the message stay where they are.
        /// </summary>
        public void EndMessage(AnatomyPart part)
        {
            if (part == AnatomyPart.LatestUser)
            {
                Move(AnatomyPart.LatestUser, AnatomyPart.History);
            }

            Move(AnatomyPart.Message, part);
            Part = part;
        }

        public readonly int Total(bool estimate) =>
            Math.Max(0, (estimate ? (int)Math.Ceiling(_text * TiktokenTokenizerRegistry.ClaudeCalibration) : _text) + Fixed);

        /// <summary>
        /// The count split by part; the parts sum to <see cref="Total"/>. For an estimate the scaled text total is
        /// apportioned by largest remainder (ties to the earlier part), so no part's rounding changes the sum.
        /// </summary>
        public readonly TokenAnatomy Anatomy(bool estimate)
        {
            Span<int> parts = stackalloc int[5];
            var slots = (int)AnatomyPart.Message;
            if (estimate)
            {
                var scaledTotal = (int)Math.Ceiling(_text * TiktokenTokenizerRegistry.ClaudeCalibration);
                Span<double> remainders = stackalloc double[5];
                var assigned = 0;
                for (var i = 0; i < slots; i++)
                {
                    var exact = _partText[i] * TiktokenTokenizerRegistry.ClaudeCalibration;
                    parts[i] = (int)Math.Floor(exact);
                    remainders[i] = exact - parts[i];
                    assigned += parts[i];
                }

                for (var left = scaledTotal - assigned; left > 0; left--)
                {
                    var best = 0;
                    for (var i = 1; i < slots; i++)
                    {
                        if (remainders[i] > remainders[best])
                        {
                            best = i;
                        }
                    }

                    parts[best]++;
                    remainders[best] = -1; // taken: every untaken part comes first
                }
            }
            else
            {
                for (var i = 0; i < slots; i++)
                {
                    parts[i] = _partText[i];
                }
            }

            var sum = 0;
            for (var i = 0; i < slots; i++)
            {
                parts[i] += _partFixed[i];
                sum += parts[i];
            }

            if (sum < 0)
            {
                return default; // the count clamps at 0 (cannot happen with well-formed framing constants)
            }

            return new TokenAnatomy(parts[0], parts[1], parts[2], parts[3], parts[4]);
        }

        private void AddText(int tokens)
        {
            _text += tokens;
            _partText[(int)Part] += tokens;
        }

        private void Move(AnatomyPart from, AnatomyPart to)
        {
            _partText[(int)to] += _partText[(int)from];
            _partFixed[(int)to] += _partFixed[(int)from];
            _partText[(int)from] = 0;
            _partFixed[(int)from] = 0;
        }
    }
}

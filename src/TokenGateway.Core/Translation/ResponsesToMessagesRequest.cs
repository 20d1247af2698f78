using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TokenGateway.Core.Translation.DialectMappings;

namespace TokenGateway.Core.Translation;

/// <summary>
/// Translates an OpenAI Responses request body into an Anthropic Messages request body: text and image input,
/// function tools with their calls and outputs, structured output, reasoning effort and the sampling options.
/// </summary>
/// <remarks>Pure, like <see cref="ChatToMessagesRequest"/>; the field table is in docs/translation.md.</remarks>
public static class ResponsesToMessagesRequest
{
    /// <summary>Translates <paramref name="request"/>; on refusal the result names every untranslatable field.</summary>
    public static RequestTranslation Translate(JsonObject request, TranslationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            return TranslateCore(request, options);
        }
        catch (InvalidOperationException)
        {
            // A value of the wrong JSON kind where an object or array was expected (JsonNode's indexers throw then).
            return RequestTranslation.Failure([new("body", "has a field of the wrong JSON type (an object, array or string where another was expected)")]);
        }
    }

    private static RequestTranslation TranslateCore(JsonObject request, TranslationOptions? options)
    {
        options ??= TranslationOptions.Default;
        var refused = new List<RefusedField>();
        var body = new JsonObject();
        var system = new JsonArray();
        var stream = false;
        int? maxTokens = null;
        string? effort = null;
        string? userId = null;
        bool? parallel = null;
        JsonNode? toolChoice = null;

        foreach (var (name, value) in request)
        {
            if (IsNull(value) && name != "model" && name != "input")
            {
                continue;
            }

            switch (name)
            {
                case "model":
                    body["model"] = value?.DeepClone();
                    break;
                case "input":
                    break; // below
                case "instructions":
                    if (Str(value) is { } instructions)
                    {
                        system.Add(new JsonObject { ["type"] = "text", ["text"] = instructions });
                    }
                    else
                    {
                        refused.Add(new(name, "must be a string"));
                    }

                    break;
                case "max_output_tokens":
                    if (TryInt(value, out var cap) && cap > 0)
                    {
                        maxTokens = cap;
                    }
                    else
                    {
                        refused.Add(new(name, "must be a positive integer"));
                    }

                    break;
                case "temperature":
                    if (!TryDouble(value, out var temperature) || temperature is < 0 or > 1)
                    {
                        refused.Add(new(name, "must be between 0 and 1 for Anthropic models (OpenAI allows up to 2; the gateway does not rescale it)"));
                    }
                    else
                    {
                        body["temperature"] = value!.DeepClone();
                    }

                    break;
                case "top_p":
                    body["top_p"] = value!.DeepClone();
                    break;
                case "stream":
                    stream = Bool(value) == true;
                    body["stream"] = stream;
                    break;
                case "tools":
                    TranslateTools(value!, body, refused);
                    break;
                case "tool_choice":
                    toolChoice = TranslateToolChoice(value!, refused);
                    break;
                case "parallel_tool_calls":
                    parallel = Bool(value);
                    break;
                case "text":
                    TranslateText(value!, body, refused);
                    break;
                case "reasoning":
                    foreach (var (key, item) in value!.AsObject())
                    {
                        if (key == "effort" && Str(item) is { } e && (e == "none" || ThinkingBudgetByEffort.ContainsKey(e)))
                        {
                            effort = e;
                        }
                        else if (key != "summary" && key != "generate_summary" && !IsNull(item))
                        {
                            refused.Add(new("reasoning." + key, "has no Anthropic equivalent"));
                        }
                    }

                    break;
                case "user":
                case "safety_identifier":
                    var id = Str(value);
                    if (id is null || (userId is not null && userId != id))
                    {
                        refused.Add(new(name, "must be a string, and equal to the other of user/safety_identifier when both are sent (Anthropic has one metadata.user_id)"));
                    }

                    userId = id;
                    break;
                case "service_tier":
                    var tier = Str(value);
                    if (tier is "auto" or "default")
                    {
                        body["service_tier"] = tier == "auto" ? "auto" : "standard_only";
                    }
                    else
                    {
                        refused.Add(new(name, $"'{tier}' has no Anthropic equivalent (auto and default do)"));
                    }

                    break;
                case "truncation":
                    if (Str(value) != "disabled")
                    {
                        refused.Add(new(name, "auto has no Anthropic equivalent"));
                    }

                    break;
                case "store":
                case "metadata":
                case "prompt_cache_key":
                    // Dropped (documented): the gateway does not store responses (store defaults to true, so refusing
                    // it would refuse every request); metadata tags stored responses; the cache key is a routing hint.
                    break;
                default:
                    // previous_response_id, conversation, include, background, top_logprobs, prompt, … : no equivalent.
                    refused.Add(new(name, "has no Anthropic equivalent"));
                    break;
            }
        }

        var messages = new JsonArray();
        switch (request["input"])
        {
            case JsonValue v when Str(v) is { } text:
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = text });
                break;
            case JsonArray items:
                TranslateInput(items, system, messages, refused);
                break;
            default:
                refused.Add(new("input", "must be a string or an array of items"));
                break;
        }

        if (system.Count > 0)
        {
            body["system"] = system.Count == 1 ? system[0]!["text"]!.DeepClone() : system;
        }

        body["messages"] = messages;
        if (toolChoice is not null || parallel == false)
        {
            ChatToMessagesRequest.FinishToolChoice(toolChoice, parallel, body);
        }

        var budget = effort is not null && effort != "none" ? ThinkingBudgetByEffort[effort] : 0;
        if (budget > 0)
        {
            if (maxTokens is { } given && given <= budget)
            {
                refused.Add(new("max_output_tokens",
                    string.Create(CultureInfo.InvariantCulture, $"must exceed the thinking budget of reasoning effort '{effort}' ({budget} tokens): Anthropic counts thinking inside max_tokens")));
            }

            body["thinking"] = new JsonObject { ["type"] = "enabled", ["budget_tokens"] = budget };
        }

        body["max_tokens"] = maxTokens ?? options.DefaultMaxTokens + budget;
        if (userId is not null)
        {
            body["metadata"] = new JsonObject { ["user_id"] = userId };
        }

        // A Responses stream is not translated back yet (docs/translation.md); the flag is reported for the host.
        return refused.Count > 0 ? RequestTranslation.Failure(refused) : RequestTranslation.Success(body, stream, includeUsage: true);
    }

    private static void TranslateTools(JsonNode value, JsonObject body, List<RefusedField> refused)
    {
        if (value is not JsonArray tools)
        {
            refused.Add(new("tools", "must be an array"));
            return;
        }

        var result = new JsonArray();
        for (var i = 0; i < tools.Count; i++)
        {
            if (tools[i] is not JsonObject tool || Str(tool["type"]) != "function" || Str(tool["name"]) is not { } name)
            {
                refused.Add(new($"tools[{i}]", "is a built-in tool; only function tools have an Anthropic equivalent"));
                continue;
            }

            var converted = new JsonObject { ["name"] = name };
            if (Str(tool["description"]) is { } description)
            {
                converted["description"] = description;
            }

            converted["input_schema"] = tool["parameters"] is JsonObject parameters
                ? parameters.DeepClone()
                : new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
            if (Bool(tool["strict"]) == true)
            {
                converted["strict"] = true;
            }

            result.Add(converted);
        }

        body["tools"] = result;
    }

    private static JsonObject? TranslateToolChoice(JsonNode value, List<RefusedField> refused)
    {
        switch (Str(value))
        {
            case "auto": return new JsonObject { ["type"] = "auto" };
            case "none": return new JsonObject { ["type"] = "none" };
            case "required": return new JsonObject { ["type"] = "any" };
            default: break;
        }

        if (value is JsonObject choice && Str(choice["type"]) == "function" && Str(choice["name"]) is { } name)
        {
            return new JsonObject { ["type"] = "tool", ["name"] = name };
        }

        refused.Add(new("tool_choice", "must be auto, none, required or a named function"));
        return null;
    }

    private static void TranslateText(JsonNode value, JsonObject body, List<RefusedField> refused)
    {
        foreach (var (key, item) in value.AsObject())
        {
            if (IsNull(item) || key == "verbosity")
            {
                continue; // verbosity dropped (documented): Anthropic has no length control besides max_tokens
            }

            if (key != "format")
            {
                refused.Add(new("text." + key, "has no Anthropic equivalent"));
                continue;
            }

            var type = Str(item!["type"]);
            if (type == "text")
            {
                continue;
            }

            if (type == "json_schema" && item["schema"] is JsonObject schema)
            {
                body["output_config"] = new JsonObject
                {
                    ["format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = schema.DeepClone() },
                };
            }
            else
            {
                refused.Add(new("text.format", "must be text or json_schema with a schema (json_object has no Anthropic equivalent)"));
            }
        }
    }

    private static void TranslateInput(JsonArray items, JsonArray system, JsonArray messages, List<RefusedField> refused)
    {
        var started = false;
        for (var i = 0; i < items.Count; i++)
        {
            var path = $"input[{i}]";
            if (items[i] is not JsonObject item)
            {
                refused.Add(new(path, "must be an object"));
                continue;
            }

            var type = Str(item["type"]) ?? (item.ContainsKey("role") ? "message" : null);
            switch (type)
            {
                case "message":
                    var role = Str(item["role"]);
                    if (role is "system" or "developer")
                    {
                        if (started)
                        {
                            refused.Add(new(path, $"is a {role} message after the conversation started; Anthropic has one system prompt, before the messages"));
                        }
                        else
                        {
                            AddContent(item["content"], path, system, refused, textOnly: true);
                        }
                    }
                    else if (role is "user" or "assistant")
                    {
                        started = true;
                        var turn = Turn(messages, role);
                        AddContent(item["content"], path, turn, refused, textOnly: false);
                    }
                    else
                    {
                        refused.Add(new(path + ".role", $"'{role}' has no Anthropic equivalent"));
                    }

                    break;
                case "function_call":
                    started = true;
                    var arguments = Str(item["arguments"]) ?? string.Empty;
                    JsonNode? input;
                    try
                    {
                        input = string.IsNullOrWhiteSpace(arguments) ? new JsonObject() : JsonNode.Parse(arguments);
                    }
                    catch (JsonException)
                    {
                        input = null;
                    }

                    if (Str(item["call_id"]) is not { } callId || Str(item["name"]) is not { } name || input is not JsonObject)
                    {
                        refused.Add(new(path, "must have a call_id, a name and arguments that are a JSON object"));
                        break;
                    }

                    Turn(messages, "assistant").Add(new JsonObject { ["type"] = "tool_use", ["id"] = callId, ["name"] = name, ["input"] = input });
                    break;
                case "function_call_output":
                    started = true;
                    var result = new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = Str(item["call_id"]) ?? string.Empty };
                    if (Str(item["output"]) is { } output)
                    {
                        result["content"] = output;
                    }
                    else
                    {
                        var blocks = new JsonArray();
                        AddContent(item["output"], path + ".output", blocks, refused, textOnly: true);
                        result["content"] = blocks;
                    }

                    Turn(messages, "user").Add(result);
                    break;
                default:
                    // reasoning, item_reference, built-in tool calls and outputs.
                    refused.Add(new(path, $"a '{type}' item has no Anthropic equivalent"));
                    break;
            }
        }
    }

    /// <summary>The content array of the last message when it has <paramref name="role"/>, else of a new one (Anthropic alternates roles).</summary>
    private static JsonArray Turn(JsonArray messages, string role)
    {
        if (messages.Count > 0 && messages[^1] is JsonObject last && Str(last["role"]) == role && last["content"] is JsonArray content)
        {
            return content;
        }

        var blocks = new JsonArray();
        messages.Add(new JsonObject { ["role"] = role, ["content"] = blocks });
        return blocks;
    }

    private static void AddContent(JsonNode? content, string path, JsonArray blocks, List<RefusedField> refused, bool textOnly)
    {
        if (Str(content) is { } text)
        {
            blocks.Add(new JsonObject { ["type"] = "text", ["text"] = text });
            return;
        }

        if (content is not JsonArray parts)
        {
            refused.Add(new(path + ".content", "must be a string or an array of content parts"));
            return;
        }

        for (var k = 0; k < parts.Count; k++)
        {
            var part = parts[k] as JsonObject;
            var type = Str(part?["type"]);
            if (type is "input_text" or "output_text" && Str(part!["text"]) is { } partText)
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = partText });
            }
            else if (type == "refusal" && Str(part!["refusal"]) is { } refusal)
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = refusal });
            }
            else if (!textOnly && type == "input_image" && Str(part!["image_url"]) is { } url)
            {
                blocks.Add(new JsonObject { ["type"] = "image", ["source"] = ChatToMessagesRequest.ImageSource(url) });
            }
            else
            {
                refused.Add(new($"{path}.content[{k}]", $"a '{type}' part has no Anthropic equivalent here"));
            }
        }
    }
}

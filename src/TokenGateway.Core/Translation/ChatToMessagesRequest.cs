using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TokenGateway.Core.Translation.DialectMappings;

namespace TokenGateway.Core.Translation;

/// <summary>Translates an OpenAI Chat Completions request body into an Anthropic Messages request body.</summary>
/// <remarks>
/// Pure: the source is not modified (values are cloned). Every field is either translated, dropped because the
/// mapping table in docs/translation.md says so, or refused; unknown fields are refused, never passed on.
/// </remarks>
public static class ChatToMessagesRequest
{
    /// <summary>Translates <paramref name="chat"/>; on refusal the result names every untranslatable field.</summary>
    public static RequestTranslation Translate(JsonObject chat, TranslationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(chat);
        try
        {
            return TranslateCore(chat, options);
        }
        catch (InvalidOperationException)
        {
            // A value of the wrong JSON kind where an object or array was expected (JsonNode's indexers throw then).
            return RequestTranslation.Failure([new("body", "has a field of the wrong JSON type (an object, array or string where another was expected)")]);
        }
    }

    private static RequestTranslation TranslateCore(JsonObject chat, TranslationOptions? options)
    {
        options ??= TranslationOptions.Default;
        var refused = new List<RefusedField>();
        var body = new JsonObject();
        var stream = false;
        var includeUsage = false;
        int? maxTokens = null;
        string? effort = null;
        string? userId = null;
        bool? parallel = null;
        JsonNode? toolChoice = null;

        foreach (var (name, value) in chat)
        {
            if (IsNull(value) && name != "messages" && name != "model")
            {
                continue; // SDKs send explicit nulls for unset options
            }

            switch (name)
            {
                case "model":
                    body["model"] = value?.DeepClone();
                    break;
                case "messages":
                    break; // below, after the options
                case "max_completion_tokens":
                case "max_tokens":
                    if (TryInt(value, out var cap) && cap > 0)
                    {
                        // max_completion_tokens wins when both are sent, as in LlmRequest.MaxTokens.
                        maxTokens = name == "max_completion_tokens" || maxTokens is null ? cap : maxTokens;
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
                case "stop":
                    TranslateStop(value!, body, refused);
                    break;
                case "stream":
                    stream = Bool(value) == true;
                    body["stream"] = stream;
                    break;
                case "stream_options":
                    includeUsage = Bool(value!["include_usage"]) == true;
                    break; // Anthropic always streams usage; include_obfuscation has no meaning there
                case "tools":
                    TranslateTools(value!, body, refused);
                    break;
                case "tool_choice":
                    toolChoice = TranslateToolChoice(value!, refused);
                    break;
                case "parallel_tool_calls":
                    parallel = Bool(value);
                    break;
                case "response_format":
                    TranslateResponseFormat(value!, body, refused);
                    break;
                case "reasoning_effort":
                    effort = Str(value);
                    if (effort is null || (effort != "none" && !ThinkingBudgetByEffort.ContainsKey(effort)))
                    {
                        refused.Add(new(name, "must be one of none, minimal, low, medium, high, xhigh"));
                        effort = null;
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
                case "n":
                    if (!TryInt(value, out var n) || n != 1)
                    {
                        refused.Add(new(name, "greater than 1 has no Anthropic equivalent (one answer per request)"));
                    }

                    break;
                case "logprobs":
                    if (Bool(value) != false)
                    {
                        refused.Add(new(name, "has no Anthropic equivalent"));
                    }

                    break;
                case "presence_penalty":
                case "frequency_penalty":
                    if (!TryDouble(value, out var penalty) || penalty != 0)
                    {
                        refused.Add(new(name, "has no Anthropic equivalent"));
                    }

                    break;
                case "logit_bias":
                    if (value is not JsonObject { Count: 0 })
                    {
                        refused.Add(new(name, "has no Anthropic equivalent"));
                    }

                    break;
                case "store":
                    if (Bool(value) != false)
                    {
                        refused.Add(new(name, "true has no Anthropic equivalent (Anthropic does not store completions)"));
                    }

                    break;
                case "modalities":
                    if (value is not JsonArray { Count: 1 } m || Str(m[0]) != "text")
                    {
                        refused.Add(new(name, "other than [\"text\"] has no Anthropic equivalent"));
                    }

                    break;
                case "metadata":
                case "prompt_cache_key":
                    // Dropped (documented): metadata tags stored completions, which are refused above; the cache key
                    // is a routing hint, and Anthropic caching is driven by cache_control breakpoints instead.
                    break;
                default:
                    // top_logprobs, seed, audio, prediction, web_search_options, functions, function_call, verbosity,
                    // prompt_cache_retention and anything newer: no Anthropic equivalent.
                    refused.Add(new(name, "has no Anthropic equivalent"));
                    break;
            }
        }

        if (chat["messages"] is JsonArray messages)
        {
            TranslateMessages(messages, body, refused);
        }
        else
        {
            refused.Add(new("messages", "must be an array"));
        }

        if (toolChoice is not null || parallel == false)
        {
            FinishToolChoice(toolChoice, parallel, body);
        }

        var budget = effort is not null && effort != "none" ? ThinkingBudgetByEffort[effort] : 0;
        if (budget > 0)
        {
            if (maxTokens is { } given && given <= budget)
            {
                refused.Add(new(chat.ContainsKey("max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                    string.Create(CultureInfo.InvariantCulture, $"must exceed the thinking budget of reasoning_effort '{effort}' ({budget} tokens): Anthropic counts thinking inside max_tokens")));
            }

            body["thinking"] = new JsonObject { ["type"] = "enabled", ["budget_tokens"] = budget };
        }

        body["max_tokens"] = maxTokens ?? options.DefaultMaxTokens + budget;
        if (userId is not null)
        {
            body["metadata"] = new JsonObject { ["user_id"] = userId };
        }

        return refused.Count > 0 ? RequestTranslation.Failure(refused) : RequestTranslation.Success(body, stream, includeUsage);
    }

    private static void TranslateStop(JsonNode value, JsonObject body, List<RefusedField> refused)
    {
        if (Str(value) is { } single)
        {
            body["stop_sequences"] = new JsonArray(single);
        }
        else if (value is JsonArray list && list.All(s => Str(s) is not null))
        {
            body["stop_sequences"] = list.DeepClone();
        }
        else
        {
            refused.Add(new("stop", "must be a string or an array of strings"));
        }
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
            var path = $"tools[{i}]";
            if (tools[i] is not JsonObject tool || Str(tool["type"]) != "function" || tool["function"] is not JsonObject function
                || Str(function["name"]) is not { } name)
            {
                refused.Add(new(path, "is not a function tool; only function tools have an Anthropic equivalent"));
                continue;
            }

            var converted = new JsonObject { ["name"] = name };
            if (Str(function["description"]) is { } description)
            {
                converted["description"] = description;
            }

            converted["input_schema"] = function["parameters"] is JsonObject parameters
                ? parameters.DeepClone()
                : new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
            if (Bool(function["strict"]) == true)
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

        if (value is JsonObject choice && Str(choice["type"]) == "function" && Str(choice["function"]?["name"]) is { } name)
        {
            return new JsonObject { ["type"] = "tool", ["name"] = name };
        }

        refused.Add(new("tool_choice", "must be auto, none, required or a named function (allowed_tools and custom tools have no Anthropic equivalent)"));
        return null;
    }

    internal static void FinishToolChoice(JsonNode? toolChoice, bool? parallel, JsonObject body)
    {
        var choice = toolChoice as JsonObject;
        if (parallel == false && Str(choice?["type"]) != "none")
        {
            choice ??= new JsonObject { ["type"] = "auto" };
            choice["disable_parallel_tool_use"] = true;
        }

        if (choice is not null)
        {
            body["tool_choice"] = choice;
        }
    }

    private static void TranslateResponseFormat(JsonNode value, JsonObject body, List<RefusedField> refused)
    {
        var type = Str(value["type"]);
        if (type == "text")
        {
            return; // the default
        }

        var schema = (value["json_schema"] as JsonObject)?["schema"] as JsonObject;
        if (type == "json_schema" && schema is not null)
        {
            // Anthropic's native structured output (GA: output_config.format); name/description/strict have no
            // place there and are dropped (documented). Anthropic's format is always strict.
            body["output_config"] = new JsonObject
            {
                ["format"] = new JsonObject { ["type"] = "json_schema", ["schema"] = schema.DeepClone() },
            };
            return;
        }

        refused.Add(new("response_format", "must be text or json_schema with a schema (json_object has no Anthropic equivalent: send a JSON schema)"));
    }

    private static void TranslateMessages(JsonArray messages, JsonObject body, List<RefusedField> refused)
    {
        var system = new JsonArray();
        var systemIsSingleString = true;
        var output = new JsonArray();
        var started = false;
        JsonObject? toolTurn = null; // the user turn that collects consecutive tool results (and a user message right after them)
        for (var i = 0; i < messages.Count; i++)
        {
            var path = $"messages[{i}]";
            if (messages[i] is not JsonObject message)
            {
                refused.Add(new(path, "must be an object"));
                continue;
            }

            var role = Str(message["role"]);
            switch (role)
            {
                case "system":
                case "developer":
                    if (started)
                    {
                        refused.Add(new(path, $"is a {role} message after the conversation started; Anthropic has one system prompt, before the messages"));
                        break;
                    }

                    systemIsSingleString &= system.Count == 0 && Str(message["content"]) is not null;
                    AddTextBlocks(message["content"], path, system, refused, allowRefusal: false);
                    break;
                case "user":
                    started = true;
                    var userContent = TranslateUserContent(message["content"], path, refused);
                    if (toolTurn is not null)
                    {
                        AppendBlocks(toolTurn, userContent);
                        toolTurn = null;
                    }
                    else
                    {
                        output.Add(new JsonObject { ["role"] = "user", ["content"] = userContent });
                    }

                    break;
                case "assistant":
                    started = true;
                    toolTurn = null;
                    output.Add(TranslateAssistant(message, path, refused));
                    break;
                case "tool":
                    started = true;
                    if (toolTurn is null)
                    {
                        toolTurn = new JsonObject { ["role"] = "user", ["content"] = new JsonArray() };
                        output.Add(toolTurn);
                    }

                    var result = new JsonObject
                    {
                        ["type"] = "tool_result",
                        ["tool_use_id"] = Str(message["tool_call_id"]) ?? string.Empty,
                    };
                    if (Str(message["tool_call_id"]) is null)
                    {
                        refused.Add(new(path + ".tool_call_id", "is required"));
                    }

                    if (Str(message["content"]) is { } text)
                    {
                        result["content"] = text;
                    }
                    else
                    {
                        var blocks = new JsonArray();
                        AddTextBlocks(message["content"], path, blocks, refused, allowRefusal: false);
                        result["content"] = blocks;
                    }

                    toolTurn["content"]!.AsArray().Add(result);
                    break;
                default:
                    refused.Add(new(path + ".role", $"'{role}' has no Anthropic equivalent (system, developer, user, assistant and tool do)"));
                    break;
            }
        }

        if (system.Count > 0)
        {
            body["system"] = systemIsSingleString && system.Count == 1 ? system[0]!["text"]!.DeepClone() : system;
        }

        body["messages"] = output;
    }

    private static void AppendBlocks(JsonObject turn, JsonNode content)
    {
        var blocks = turn["content"]!.AsArray();
        if (content is JsonArray array)
        {
            foreach (var block in array.ToList())
            {
                array.Remove(block);
                blocks.Add(block);
            }
        }
        else
        {
            blocks.Add(new JsonObject { ["type"] = "text", ["text"] = content.DeepClone() });
        }
    }

    private static void AddTextBlocks(JsonNode? content, string path, JsonArray blocks, List<RefusedField> refused, bool allowRefusal)
    {
        if (Str(content) is { } text)
        {
            blocks.Add(new JsonObject { ["type"] = "text", ["text"] = text });
            return;
        }

        if (content is not JsonArray parts)
        {
            refused.Add(new(path + ".content", "must be a string or an array of text parts"));
            return;
        }

        for (var k = 0; k < parts.Count; k++)
        {
            var type = Str(parts[k]?["type"]);
            if (type == "text" && Str(parts[k]!["text"]) is { } partText)
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = partText });
            }
            else if (allowRefusal && type == "refusal" && Str(parts[k]!["refusal"]) is { } refusal)
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = refusal });
            }
            else
            {
                refused.Add(new($"{path}.content[{k}]", $"a '{type}' part is not allowed here; only text translates"));
            }
        }
    }

    private static JsonNode TranslateUserContent(JsonNode? content, string path, List<RefusedField> refused)
    {
        if (Str(content) is { } text)
        {
            return text;
        }

        var blocks = new JsonArray();
        if (content is not JsonArray parts)
        {
            refused.Add(new(path + ".content", "must be a string or an array of content parts"));
            return blocks;
        }

        for (var k = 0; k < parts.Count; k++)
        {
            var partPath = $"{path}.content[{k}]";
            var part = parts[k] as JsonObject;
            switch (Str(part?["type"]))
            {
                case "text" when Str(part!["text"]) is { } partText:
                    blocks.Add(new JsonObject { ["type"] = "text", ["text"] = partText });
                    break;
                case "image_url" when Str(part!["image_url"]?["url"]) is { } url:
                    // image_url.detail has no Anthropic equivalent and is dropped (documented).
                    blocks.Add(new JsonObject { ["type"] = "image", ["source"] = ImageSource(url) });
                    break;
                case "file" when Str(part!["file"]?["file_data"]) is { } data && TryParseDataUrl(data, out var mediaType, out var payload)
                                 && mediaType == "application/pdf":
                    var document = new JsonObject
                    {
                        ["type"] = "document",
                        ["source"] = new JsonObject { ["type"] = "base64", ["media_type"] = mediaType, ["data"] = payload },
                    };
                    if (Str(part["file"]!["filename"]) is { } filename)
                    {
                        document["title"] = filename;
                    }

                    blocks.Add(document);
                    break;
                default:
                    refused.Add(new(partPath, "has no Anthropic equivalent (text, image_url and inline PDF file parts do)"));
                    break;
            }
        }

        return blocks;
    }

    internal static JsonObject ImageSource(string url) =>
        TryParseDataUrl(url, out var mediaType, out var data)
            ? new JsonObject { ["type"] = "base64", ["media_type"] = mediaType, ["data"] = data }
            : new JsonObject { ["type"] = "url", ["url"] = url };

    private static JsonObject TranslateAssistant(JsonObject message, string path, List<RefusedField> refused)
    {
        var calls = message["tool_calls"] as JsonArray;
        if (message["function_call"] is not null && !IsNull(message["function_call"]) || message["audio"] is not null && !IsNull(message["audio"]))
        {
            refused.Add(new(path, "function_call and audio have no Anthropic equivalent"));
        }

        var content = message["content"];
        if ((calls is null || calls.Count == 0) && Str(content) is { } onlyText)
        {
            return new JsonObject { ["role"] = "assistant", ["content"] = onlyText };
        }

        var blocks = new JsonArray();
        if (Str(content) is { } text)
        {
            if (text.Length > 0)
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = text });
            }
        }
        else if (!IsNull(content))
        {
            AddTextBlocks(content, path, blocks, refused, allowRefusal: true);
        }

        if (Str(message["refusal"]) is { Length: > 0 } refusal)
        {
            blocks.Add(new JsonObject { ["type"] = "text", ["text"] = refusal });
        }

        for (var k = 0; k < (calls?.Count ?? 0); k++)
        {
            var callPath = $"{path}.tool_calls[{k}]";
            var call = calls![k] as JsonObject;
            var function = call?["function"] as JsonObject;
            if (Str(call?["id"]) is not { } id || Str(function?["name"]) is not { } name)
            {
                refused.Add(new(callPath, "must be a function call with an id and a name"));
                continue;
            }

            var arguments = Str(function!["arguments"]) ?? string.Empty;
            JsonNode? input;
            try
            {
                input = string.IsNullOrWhiteSpace(arguments) ? new JsonObject() : JsonNode.Parse(arguments);
            }
            catch (JsonException)
            {
                input = null;
            }

            if (input is not JsonObject)
            {
                refused.Add(new(callPath + ".function.arguments", "must be a JSON object to become an Anthropic tool_use input"));
                continue;
            }

            blocks.Add(new JsonObject { ["type"] = "tool_use", ["id"] = id, ["name"] = name, ["input"] = input });
        }

        return new JsonObject { ["role"] = "assistant", ["content"] = blocks };
    }
}

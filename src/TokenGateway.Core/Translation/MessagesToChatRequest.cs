using System.Text.Json.Nodes;
using static TokenGateway.Core.Translation.DialectMappings;

namespace TokenGateway.Core.Translation;

/// <summary>Translates an Anthropic Messages request body into an OpenAI Chat Completions request body.</summary>
/// <remarks>
/// Pure: the source is not modified (values are cloned). Every field is translated, dropped where
/// docs/translation.md says so, or refused; unknown fields are refused.
/// </remarks>
public static class MessagesToChatRequest
{
    /// <summary>Translates <paramref name="messages"/>; on refusal the result names every untranslatable field.</summary>
    public static RequestTranslation Translate(JsonObject messages, TranslationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        try
        {
            return TranslateCore(messages, options);
        }
        catch (InvalidOperationException)
        {
            // A value of the wrong JSON kind where an object or array was expected (JsonNode's indexers throw then).
            return RequestTranslation.Failure([new("body", "has a field of the wrong JSON type (an object, array or string where another was expected)")]);
        }
    }

    private static RequestTranslation TranslateCore(JsonObject messages, TranslationOptions? options)
    {
        options ??= TranslationOptions.Default;
        var refused = new List<RefusedField>();
        var body = new JsonObject();
        var output = new JsonArray();
        var stream = false;
        string? effort = null;
        var disableParallel = false;

        foreach (var (name, value) in messages)
        {
            if (IsNull(value) && name != "messages" && name != "model")
            {
                continue;
            }

            switch (name)
            {
                case "model":
                    body["model"] = value?.DeepClone();
                    break;
                case "messages":
                case "system":
                    break; // below, in order
                case "max_tokens":
                    if (TryInt(value, out var cap) && cap > 0)
                    {
                        body[options.OpenAIMaxTokensField] = cap;
                    }
                    else
                    {
                        refused.Add(new(name, "must be a positive integer"));
                    }

                    break;
                case "temperature":
                case "top_p":
                    body[name] = value!.DeepClone();
                    break;
                case "stop_sequences":
                    if (value is JsonArray { Count: > 0 } stops)
                    {
                        body["stop"] = stops.DeepClone();
                    }

                    break;
                case "stream":
                    stream = Bool(value) == true;
                    body["stream"] = stream;
                    if (stream)
                    {
                        // Anthropic streams always carry usage; ask the OpenAI upstream for it.
                        body["stream_options"] = new JsonObject { ["include_usage"] = true };
                    }

                    break;
                case "tools":
                    TranslateTools(value!, body, refused);
                    break;
                case "tool_choice":
                    TranslateToolChoice(value!, body, refused, out disableParallel);
                    break;
                case "metadata":
                    if (value is JsonObject metadata)
                    {
                        foreach (var (key, item) in metadata)
                        {
                            if (key == "user_id" && Str(item) is { } user)
                            {
                                body["user"] = user;
                            }
                            else if (!IsNull(item))
                            {
                                refused.Add(new("metadata." + key, "has no OpenAI equivalent (metadata.user_id does)"));
                            }
                        }
                    }

                    break;
                case "thinking":
                    switch (Str(value!["type"]))
                    {
                        case "enabled" when TryInt(value["budget_tokens"], out var budget):
                            effort = EffortForThinkingBudget(budget);
                            break;
                        case "disabled":
                        case "adaptive":
                            break; // dropped (documented): the OpenAI model's default reasoning applies
                        default:
                            refused.Add(new(name, "must be enabled with budget_tokens, disabled or adaptive"));
                            break;
                    }

                    break;
                case "output_config":
                    foreach (var (key, item) in value!.AsObject())
                    {
                        if (IsNull(item))
                        {
                            continue;
                        }

                        if (key == "format")
                        {
                            TranslateFormat(item!, "output_config.format", body, refused);
                        }
                        else if (key == "effort" && Str(item) is "low" or "medium" or "high")
                        {
                            effort = Str(item);
                        }
                        else
                        {
                            refused.Add(new("output_config." + key, "has no OpenAI equivalent"));
                        }
                    }

                    break;
                case "output_format":
                    TranslateFormat(value!, name, body, refused);
                    break;
                case "service_tier":
                    switch (Str(value))
                    {
                        case "auto": body["service_tier"] = "auto"; break;
                        case "standard_only": body["service_tier"] = "default"; break;
                        default: refused.Add(new(name, "must be auto or standard_only")); break;
                    }

                    break;
                case "cache_control":
                    break; // dropped (documented): OpenAI caches prompt prefixes automatically
                default:
                    // top_k, container, mcp_servers, context_management and anything newer.
                    refused.Add(new(name, "has no OpenAI equivalent"));
                    break;
            }
        }

        if (messages["system"] is { } system && !IsNull(system))
        {
            output.Add(new JsonObject { ["role"] = "system", ["content"] = TextContent(system, "system", refused) });
        }

        if (messages["messages"] is JsonArray list)
        {
            TranslateMessages(list, output, refused);
        }
        else
        {
            refused.Add(new("messages", "must be an array"));
        }

        // Chat Completions wants model and messages first; keep the translated options after them.
        var ordered = new JsonObject { ["model"] = body["model"]?.DeepClone(), ["messages"] = output };
        foreach (var (key, item) in body.ToList())
        {
            if (key != "model")
            {
                body.Remove(key);
                ordered[key] = item;
            }
        }

        if (effort is not null)
        {
            ordered["reasoning_effort"] = effort;
        }

        if (disableParallel && ordered.ContainsKey("tools"))
        {
            ordered["parallel_tool_calls"] = false;
        }

        return refused.Count > 0 ? RequestTranslation.Failure(refused) : RequestTranslation.Success(ordered, stream, includeUsage: true);
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
            if (tools[i] is not JsonObject tool || (Str(tool["type"]) is { } type && type != "custom") || Str(tool["name"]) is not { } name)
            {
                refused.Add(new(path, "is a server or built-in tool; only client tools (name, input_schema) have an OpenAI equivalent"));
                continue;
            }

            var function = new JsonObject { ["name"] = name };
            foreach (var (key, item) in tool)
            {
                switch (key)
                {
                    case "name":
                    case "type":
                    case "cache_control":
                        break; // cache_control dropped (documented)
                    case "description":
                        function["description"] = item?.DeepClone();
                        break;
                    case "input_schema":
                        function["parameters"] = item?.DeepClone();
                        break;
                    case "strict":
                        if (Bool(item) == true)
                        {
                            function["strict"] = true;
                        }

                        break;
                    default:
                        if (!IsNull(item))
                        {
                            refused.Add(new($"{path}.{key}", "has no OpenAI equivalent"));
                        }

                        break;
                }
            }

            result.Add(new JsonObject { ["type"] = "function", ["function"] = function });
        }

        body["tools"] = result;
    }

    private static void TranslateToolChoice(JsonNode value, JsonObject body, List<RefusedField> refused, out bool disableParallel)
    {
        disableParallel = Bool(value["disable_parallel_tool_use"]) == true;
        switch (Str(value["type"]))
        {
            case "auto": body["tool_choice"] = "auto"; break;
            case "any": body["tool_choice"] = "required"; break;
            case "none": body["tool_choice"] = "none"; break;
            case "tool" when Str(value["name"]) is { } name:
                body["tool_choice"] = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name } };
                break;
            default:
                refused.Add(new("tool_choice", "must be auto, any, none or tool with a name"));
                break;
        }
    }

    private static void TranslateFormat(JsonNode format, string path, JsonObject body, List<RefusedField> refused)
    {
        if (Str(format["type"]) == "json_schema" && format["schema"] is JsonObject schema)
        {
            // OpenAI needs a name; Anthropic has none. Anthropic's format is always enforced, hence strict.
            body["response_format"] = new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = "response", ["schema"] = schema.DeepClone(), ["strict"] = true },
            };
        }
        else
        {
            refused.Add(new(path, "must be json_schema with a schema"));
        }
    }

    private static JsonNode TextContent(JsonNode content, string path, List<RefusedField> refused)
    {
        if (Str(content) is { } text)
        {
            return text;
        }

        var parts = new JsonArray();
        if (content is not JsonArray blocks)
        {
            refused.Add(new(path, "must be a string or an array of text blocks"));
            return parts;
        }

        for (var k = 0; k < blocks.Count; k++)
        {
            if (Str(blocks[k]?["type"]) == "text" && Str(blocks[k]!["text"]) is { } blockText)
            {
                parts.Add(new JsonObject { ["type"] = "text", ["text"] = blockText }); // cache_control and citations dropped
            }
            else
            {
                refused.Add(new($"{path}[{k}]", "only text blocks translate here"));
            }
        }

        return parts;
    }

    private static void TranslateMessages(JsonArray messages, JsonArray output, List<RefusedField> refused)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            var path = $"messages[{i}]";
            var message = messages[i] as JsonObject;
            var role = Str(message?["role"]);
            var content = message?["content"];
            if (role == "user")
            {
                TranslateUser(content, path, output, refused);
            }
            else if (role == "assistant")
            {
                output.Add(TranslateAssistant(content, path, refused));
            }
            else
            {
                refused.Add(new(path + ".role", "must be user or assistant"));
            }
        }
    }

    private static void TranslateUser(JsonNode? content, string path, JsonArray output, List<RefusedField> refused)
    {
        if (Str(content) is { } text)
        {
            output.Add(new JsonObject { ["role"] = "user", ["content"] = text });
            return;
        }

        if (content is not JsonArray blocks)
        {
            refused.Add(new(path + ".content", "must be a string or an array of blocks"));
            return;
        }

        var parts = new JsonArray();
        for (var k = 0; k < blocks.Count; k++)
        {
            var blockPath = $"{path}.content[{k}]";
            var block = blocks[k] as JsonObject;
            switch (Str(block?["type"]))
            {
                case "tool_result":
                    // Results become role:tool messages, in order, before the rest of the turn (Anthropic puts them first).
                    output.Add(new JsonObject
                    {
                        ["role"] = "tool",
                        ["tool_call_id"] = Str(block!["tool_use_id"]) ?? string.Empty,
                        ["content"] = block["content"] is { } result && !IsNull(result) ? TextContent(result, blockPath + ".content", refused) : string.Empty,
                    });
                    break; // is_error and cache_control dropped (documented)
                case "text" when Str(block!["text"]) is { } blockText:
                    parts.Add(new JsonObject { ["type"] = "text", ["text"] = blockText });
                    break;
                case "image" when block!["source"] is JsonObject source && ImageUrl(source) is { } url:
                    parts.Add(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = url } });
                    break;
                case "document" when block!["source"] is JsonObject source && Str(source["type"]) == "base64"
                                     && Str(source["media_type"]) == "application/pdf" && Str(source["data"]) is { } pdf:
                    var file = new JsonObject { ["file_data"] = "data:application/pdf;base64," + pdf };
                    if (Str(block["title"]) is { } title)
                    {
                        file["filename"] = title;
                    }

                    parts.Add(new JsonObject { ["type"] = "file", ["file"] = file });
                    break;
                default:
                    refused.Add(new(blockPath, "has no OpenAI equivalent (text, image, base64 PDF document and tool_result blocks do)"));
                    break;
            }
        }

        if (parts.Count > 0)
        {
            output.Add(new JsonObject { ["role"] = "user", ["content"] = parts });
        }
    }

    private static string? ImageUrl(JsonObject source) => Str(source["type"]) switch
    {
        "base64" when Str(source["media_type"]) is { } mediaType && Str(source["data"]) is { } data => $"data:{mediaType};base64,{data}",
        "url" => Str(source["url"]),
        _ => null,
    };

    private static JsonObject TranslateAssistant(JsonNode? content, string path, List<RefusedField> refused)
    {
        if (Str(content) is { } text)
        {
            return new JsonObject { ["role"] = "assistant", ["content"] = text };
        }

        var texts = new List<string>();
        var calls = new JsonArray();
        if (content is JsonArray blocks)
        {
            for (var k = 0; k < blocks.Count; k++)
            {
                var block = blocks[k] as JsonObject;
                switch (Str(block?["type"]))
                {
                    case "text" when Str(block!["text"]) is { } blockText:
                        texts.Add(blockText);
                        break;
                    case "tool_use" when Str(block!["id"]) is { } id && Str(block["name"]) is { } name:
                        calls.Add(new JsonObject
                        {
                            ["id"] = id,
                            ["type"] = "function",
                            ["function"] = new JsonObject
                            {
                                ["name"] = name,
                                ["arguments"] = (block["input"] ?? new JsonObject()).ToJsonString(Dialects.LlmRequestParser.WriteOptions),
                            },
                        });
                        break;
                    case "thinking":
                    case "redacted_thinking":
                        break; // dropped (documented): OpenAI chat input has no place for prior reasoning
                    default:
                        refused.Add(new($"{path}.content[{k}]", "has no OpenAI equivalent (text, tool_use and thinking blocks do)"));
                        break;
                }
            }
        }
        else
        {
            refused.Add(new(path + ".content", "must be a string or an array of blocks"));
        }

        var message = new JsonObject { ["role"] = "assistant" };
        message["content"] = texts.Count switch
        {
            0 => null,
            1 => texts[0],
            _ => new JsonArray(texts.Select(t => (JsonNode)new JsonObject { ["type"] = "text", ["text"] = t }).ToArray()),
        };
        if (calls.Count > 0)
        {
            message["tool_calls"] = calls;
        }

        return message;
    }
}

// The official openai package against the kernel's API, as an application would use it.
//
//   node openai_check.mjs BASE_URL        e.g. http://127.0.0.1:34567/v1
//
// Each check calls the client and looks at what it returned: it must have parsed, and have
// the shape the OpenAI API documents. While step 07's placeholder model runs (its description
// starts with "placeholder"), the replayed text is checked too. The last line printed is a
// JSON report, {"checks": [{"name", "ok", "error"?}], "placeholder"}; the exit status is 0
// only if every check passed. The client never retries, so a failure shows at once.
import OpenAI from "openai";

const baseURL = process.argv[2];
if (!baseURL) {
  console.error("usage: node openai_check.mjs BASE_URL");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey: "none", maxRetries: 0, timeout: 120000 });
const checks = [];
let model = null;
let placeholder = false;

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function check(name, body) {
  try {
    await body();
    checks.push({ name, ok: true });
  } catch (error) {
    checks.push({ name, ok: false, error: String(error && error.stack ? error.stack : error) });
  }
}

function show(value) {
  return JSON.stringify(value).slice(0, 300);
}

function expectUsage(usage) {
  expect(usage && Number.isInteger(usage.prompt_tokens) && Number.isInteger(usage.total_tokens),
    `usage: ${show(usage)}`);
}

// What the placeholder answers: the first max_tokens bytes of the prompt, replayed.
function replay(prompt, maxTokens) {
  return Buffer.from(prompt).subarray(0, maxTokens).toString();
}

function chatPrompt(messages) {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join("") + "<|assistant|>\n";
}

await check("models.list", async () => {
  const models = [];
  for await (const entry of client.models.list()) models.push(entry);
  expect(models.length >= 1, "no models listed");
  for (const entry of models) {
    expect(typeof entry.id === "string" && entry.id && entry.object === "model",
      `model entry: ${show(entry)}`);
  }
  model = models[0];
  placeholder = String(model.meta?.description ?? "").startsWith("placeholder");
});

const modelId = () => (model ? model.id : "ringzero");
const prompt = "The kernel answers the openai client";

await check("completions.create", async () => {
  const completion = await client.completions.create({ model: modelId(), prompt, max_tokens: 12 });
  expect(completion.object === "text_completion", `object: ${show(completion)}`);
  expect(typeof completion.id === "string" && Number.isInteger(completion.created),
    `id/created: ${show(completion)}`);
  const choice = completion.choices?.[0];
  expect(choice && typeof choice.text === "string", `choices: ${show(completion.choices)}`);
  expect(["stop", "length"].includes(choice.finish_reason), `finish_reason: ${show(choice)}`);
  expectUsage(completion.usage);
  if (placeholder) {
    expect(choice.text === replay(prompt, 12), `the placeholder replays the prompt: ${show(choice.text)}`);
  }
});

await check("completions.create stream", async () => {
  const stream = await client.completions.create({ model: modelId(), prompt, max_tokens: 10,
                                                   stream: true });
  let text = "";
  let events = 0;
  let finish = null;
  for await (const chunk of stream) {
    events++;
    expect(chunk.object === "text_completion", `chunk object: ${show(chunk)}`);
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  expect(events >= 1 && ["stop", "length"].includes(finish), `${events} events, finish ${finish}`);
  if (placeholder) expect(text === replay(prompt, 10), `streamed text ${show(text)}`);
});

const messages = [
  { role: "system", content: "You are a kernel." },
  { role: "user", content: "Say hello." },
];

await check("chat.completions.create", async () => {
  const completion = await client.chat.completions.create({ model: modelId(), messages,
                                                            max_tokens: 20 });
  expect(completion.object === "chat.completion", `object: ${show(completion)}`);
  const message = completion.choices?.[0]?.message;
  expect(message && message.role === "assistant" && typeof message.content === "string",
    `message: ${show(completion.choices)}`);
  expectUsage(completion.usage);
  if (placeholder) {
    expect(message.content === replay(chatPrompt(messages), 20), `content ${show(message.content)}`);
  }
});

await check("chat.completions.create stream", async () => {
  const stream = await client.chat.completions.create({ model: modelId(), messages,
                                                        max_tokens: 20, stream: true });
  let text = "";
  let events = 0;
  let role = null;
  let finish = null;
  for await (const chunk of stream) {
    expect(chunk.object === "chat.completion.chunk", `chunk object: ${show(chunk)}`);
    const delta = chunk.choices[0].delta;
    if (events === 0) role = delta.role;
    text += delta.content ?? "";
    finish = chunk.choices[0].finish_reason ?? finish;
    events++;
  }
  expect(role === "assistant", `the first chunk's role is ${show(role)}`);
  expect(["stop", "length"].includes(finish), `finish_reason ${finish}`);
  if (placeholder) expect(text === replay(chatPrompt(messages), 20), `streamed ${show(text)}`);
});

// The client asks for base64 unless told otherwise, and decodes it into floats itself.
async function embeddings(options) {
  const input = ["ringzero", "a teaching kernel"];
  const response = await client.embeddings.create({ model: modelId(), input, ...options });
  expect(response.object === "list" && response.data?.length === 2, `data: ${show(response)}`);
  const size = model?.meta?.n_embd;
  response.data.forEach((item, index) => {
    expect(item.object === "embedding" && item.index === index, `item ${show(item)}`);
    expect(Array.isArray(item.embedding) && item.embedding.every(Number.isFinite),
      `embedding ${show(item.embedding)}`);
    if (size) {
      expect(item.embedding.length === size,
        `embedding ${index} has ${item.embedding.length} numbers, n_embd is ${size}`);
    }
  });
  return response.data.map((item) => item.embedding);
}

let floats = null;
await check("embeddings.create encoding_format float", async () => {
  floats = await embeddings({ encoding_format: "float" });
});

await check("embeddings.create (the client's default, base64)", async () => {
  const decoded = await embeddings({});
  if (floats) {
    decoded.forEach((vector, i) => vector.forEach((x, j) => {
      expect(Math.abs(x - floats[i][j]) < 1e-5,
        `base64 embedding ${i}[${j}] = ${x}, the float one is ${floats[i][j]}`);
    }));
  }
});

await check("a 400 becomes BadRequestError naming the field", async () => {
  try {
    await client.chat.completions.create({ model: modelId(), messages: [] });
  } catch (error) {
    expect(error instanceof OpenAI.BadRequestError, `error ${error?.constructor?.name}: ${error}`);
    expect(error.status === 400, `status ${error.status}`);
    expect(/messages/.test(error.message), `message ${show(error.message)}`);
    return;
  }
  throw new Error("an empty messages list was accepted");
});

const failed = checks.filter((c) => !c.ok).length;
console.log(JSON.stringify({ checks, placeholder }));
process.exit(failed ? 1 : 0);

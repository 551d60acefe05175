import OpenAI from "openai";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";

const baseURL = process.env.DEER_BASE_URL ?? "http://127.0.0.1:8000/v1";
const fail = (what) => { console.error("FAIL:", what); process.exit(1); };
const client = new OpenAI({ baseURL, apiKey: "anything" });
const chat = await client.chat.completions.create({ model: "sim-model", messages: [{ role: "user", content: "hello deer" }] });
console.log("openai chat:", chat.choices[0].message.content);
const stream = await client.chat.completions.create({ model: "sim-model", stream: true, messages: [{ role: "user", content: "stream please" }] });
let parts = 0, text = "";
for await (const chunk of stream) { parts++; text += chunk.choices[0]?.delta?.content ?? ""; }
console.log("openai stream:", parts, "chunks:", text);
const emb = await client.embeddings.create({ model: "sim-embed", input: ["a", "b", "c"] });
console.log("openai embeddings:", emb.data.length, "vectors of", emb.data[0].embedding.length);
const models = await client.models.list();
console.log("openai models:", models.data.map(m => m.id).join(","));
const one = await client.models.retrieve(models.data[0]?.id ?? "sim-model");
console.log("openai model:", one.id, "owned by", one.owned_by);
// A model no upstream serves is the SDK's NotFoundError, not a fake answer.
let missing;
try {
  await client.chat.completions.create({ model: "gpt-4.1-typo", messages: [{ role: "user", content: "hi" }] });
} catch (e) { missing = e; }
console.log("openai unknown model:", missing?.status, missing?.code, missing?.message);

const lc = new ChatOpenAI({ model: "sim-model", apiKey: "anything", configuration: { baseURL } });
const msg = await lc.invoke("hi from langchain");
console.log("langchain invoke:", msg.content);
let n = 0;
for await (const c of await lc.stream("stream from langchain")) n++;
console.log("langchain stream chunks:", n);
const le = new OpenAIEmbeddings({ model: "sim-embed", apiKey: "anything", configuration: { baseURL } });
const v = await le.embedDocuments(["x", "y"]);
console.log("langchain embeddings:", v.length, v[0].length);

if (!chat.choices[0].message.content) fail("chat completion has no content");
if (parts < 2 || !text) fail("stream did not arrive in chunks");
if (emb.data.length !== 3 || emb.data.some((d, i) => d.index !== i)) fail("embeddings are not one per input, in order");
if (!models.data.some(m => m.id === "sim-model") || !models.data.some(m => m.id === "sim-embed")) fail("models.list() does not show the simulator's models");
if (one.id !== models.data[0].id || one.object !== "model") fail("models.retrieve() does not match the list");
if (!(missing instanceof OpenAI.NotFoundError) || missing.code !== "model_not_found" || missing.param !== "model") fail("an unknown model is not NotFoundError model_not_found");
if (!msg.content || n < 2 || v.length !== 2) fail("LangChain results");
console.log("compat: OK");

console.log("ort-cuda placeholder")
